"""Models: THE audio front end, the SE block, encoders, fusion, the two-stream ASD model, Light-ASD and LR-ASD."""

from torch import nn

from asd_se.models.asd import ActiveSpeakerModel, count_parameters
from asd_se.models.config import ModelConfig
from asd_se.models.lightasd import LightAsdModel
from asd_se.models.lrasd import LrAsdModel
from asd_se.models.output import AsdModel, ASDOutput


def build_model(config: ModelConfig) -> nn.Module:
    """The model ``config`` describes: Light-ASD or LR-ASD for their variants, else asd-se's two-stream model."""
    published = {"lightasd": LightAsdModel, "lrasd": LrAsdModel}
    return published.get(config.variant, ActiveSpeakerModel)(config)


__all__ = ["ASDOutput", "AsdModel", "ActiveSpeakerModel", "LightAsdModel", "LrAsdModel", "build_model",
           "count_parameters"]
