"""``asd-se talkset``: real talking-head clips, one folder per person, -> an AVA-format dataset (TalkSet's recipe)."""
