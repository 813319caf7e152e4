"""asd-se render: faces found and tracked, scored, explained and drawn into an annotated MP4."""
