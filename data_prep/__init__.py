"""Datasets: AVA/WASD annotation reading, the synthetic AVA-format world and the track-store builder."""
