"""Training: batches from the track store, the loop, evaluation, breakdowns, cached encoder features."""
