"""What the command modules share."""

CHECKPOINT_HELP = "an asd-se checkpoint (best.pt / last.pt of asd-se train) or a shipped model's name (asd-se models)"
