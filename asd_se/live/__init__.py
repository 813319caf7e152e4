"""`asd-se live`: who speaks, and why, while the video is still arriving."""
