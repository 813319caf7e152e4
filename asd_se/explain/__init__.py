"""Explanations of the model's decisions: SE heatmaps (one forward pass, no gradients)."""
