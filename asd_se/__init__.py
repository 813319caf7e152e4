"""asd-se: active speaker detection that explains itself with Squeeze-and-Excitation heatmaps."""

__version__ = "0.1.0"
