"""Models: THE audio front end, the SE block, encoders, fusion, the two-stream ASD model and Light-ASD."""

from torch import nn

from asd_se.config import ModelConfig
from asd_se.models.asd import ActiveSpeakerModel, count_parameters
from asd_se.models.lightasd import LightAsdModel
from asd_se.models.output import AsdModel, ASDOutput


def build_model(config: ModelConfig) -> nn.Module:
    """The model ``config`` describes: Light-ASD for ``variant: lightasd``, else asd-se's two-stream model."""
    return LightAsdModel(config) if config.variant == "lightasd" else ActiveSpeakerModel(config)


__all__ = ["ASDOutput", "AsdModel", "ActiveSpeakerModel", "LightAsdModel", "build_model", "count_parameters"]
