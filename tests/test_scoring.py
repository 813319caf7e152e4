"""The scoring engine's multi-duration scores: every piece scored as if alone, whatever the engine reuses."""

from __future__ import annotations

import pytest
import torch

from asd_se.checkpoint import load_model
from asd_se.config import load_config
from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.models import build_model
from asd_se.scoring import score_clip, score_clips

# pieces of 5, 25 (twice), 50 and 62 frames over 160: under 4 encoder radii a piece is encoded whole, above it its
# inner edges are encoded once and shared (Light-ASD's radius 6, LR-ASD's 9, asd-se light's 3)
DURATIONS = (0.2, 1, 1, 2, 2.5)
FRAMES = 160


def _piece_by_piece(model, faces: torch.Tensor, audio: torch.Tensor, step: int) -> tuple[torch.Tensor, ...]:
    """Scores and logits ``(T,)`` of one clip cut into pieces of ``step`` frames, each its own ``score_clip`` call
    with its own audio (its context taken from the clip's audio, zeros beyond)."""
    extra = sum(model.audio_context)
    padded = torch.nn.functional.pad(audio, model.audio_context)
    scores, logits = [], []
    for start in range(0, faces.shape[1], step):
        end = min(faces.shape[1], start + step)
        sound = padded[:, start * SAMPLES_PER_FRAME:end * SAMPLES_PER_FRAME + extra]
        piece = score_clip(model, faces[:, start:end], sound)
        scores.append(piece.scores)
        logits.append(torch.logit(piece.probs.double()))
    return torch.cat(scores), torch.cat(logits)


def _model(name: str):
    """asd-se's light model (untrained: its scores vary enough), or a shipped model by name (untrained two-class
    models score every frame alike, to 1e-3, which would hide a wrong edge)."""
    if name == "light":
        torch.manual_seed(0)
        return build_model(load_config(None, ["model.se=true"]).model).eval()
    return load_model(name, torch.device("cpu"))[0]


@pytest.mark.parametrize("name", ["light", "lightasd-talkset-se", "lrasd-vasp-se"])
def test_multi_duration_scores_are_the_pieces_scored_alone(name):
    model = _model(name)
    torch.manual_seed(1)
    faces = torch.randint(0, 256, (2, FRAMES, 112, 112), dtype=torch.uint8)
    audio = torch.randn(2, FRAMES * SAMPLES_PER_FRAME) * 0.1
    averaged = score_clips(model, faces, audio, durations=DURATIONS)
    for clip in range(2):
        alone = [_piece_by_piece(model, faces[clip:clip + 1], audio[clip:clip + 1], round(seconds * 25))
                 for seconds in DURATIONS]
        scores = torch.stack([a[0] for a in alone]).mean(0)
        probs = torch.sigmoid(torch.stack([a[1] for a in alone]).mean(0)).float()
        assert torch.allclose(averaged[clip].scores, scores, atol=1e-4), name
        assert torch.allclose(averaged[clip].probs, probs, atol=1e-4), name
