"""Reporting: what a run shows and publishes: mode-usage monitoring, the mode and pipeline reports, Weights & Biases,
the model card and Hub pushes."""
