"""Models: the SE block, visual and audio encoders, fusion, and the two-stream ASD model."""

from asd_se.models.asd import ActiveSpeakerModel, ASDOutput, count_parameters

__all__ = ["ActiveSpeakerModel", "ASDOutput", "count_parameters"]
