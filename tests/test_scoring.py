"""The scoring engine: multi-duration scores (every piece scored as if alone, whatever the engine reuses), maps of
some frames only, and a sound heard by several faces encoded once."""

from __future__ import annotations

import pytest
import torch

from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.explain import ChannelSelection, build_explainer
from asd_se.models import build_model
from asd_se.models.config import load_config
from asd_se.models.loading import load_model
from asd_se.scoring.engine import score_clip, score_clips

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


@pytest.mark.parametrize("explainer", ["se", "se_contrast", "eigencam", "gradcam"])
def test_maps_of_some_frames_are_those_frames_of_the_whole_clip(explainer):
    """``asd-se live`` explains only the frames a window decides: the same maps and channels as the whole clip's."""
    model = _model("lrasd-vasp-se")
    torch.manual_seed(2)
    faces = torch.randint(0, 256, (2, 40, 112, 112), dtype=torch.uint8)
    audio = torch.randn(2, 40 * SAMPLES_PER_FRAME) * 0.1
    explainers = [build_explainer(explainer, ChannelSelection())]
    whole = score_clips(model, faces, audio, explainers)
    spans = [slice(30, 34), slice(5, 6)]
    some = score_clips(model, faces, audio, explainers, explained=spans)
    for clip, span in enumerate(spans):
        assert torch.equal(some[clip].probs, whole[clip].probs)
        assert some[clip].maps[explainer].shape[0] == span.stop - span.start
        assert torch.allclose(some[clip].maps[explainer], whole[clip].maps[explainer][span], atol=1e-5)
        assert some[clip].channels == (whole[clip].channels[span] if whole[clip].channels is not None else None)
    if explainers[0].needs_gradients:
        return
    with torch.no_grad():  # as live decides: from the pooled maps, with the maps of the frames explained only
        maps = model.visual_maps(faces)
    span = slice(30, 34)
    pooled = score_clips(model, faces, audio, explainers, visual=maps[:, :, span], explained=span,
                         pooled=model.pool(maps))
    for clip in range(2):
        assert torch.allclose(pooled[clip].probs, whole[clip].probs, atol=1e-6)
        assert torch.allclose(pooled[clip].maps[explainer], whole[clip].maps[explainer][span], atol=1e-5)


def test_faces_that_hear_the_same_sound_have_it_encoded_once_with_the_same_scores():
    model = _model("lrasd-vasp-se")
    torch.manual_seed(3)
    faces = torch.randint(0, 256, (3, 30, 112, 112), dtype=torch.uint8)
    heard = torch.randn(2, 30 * SAMPLES_PER_FRAME) * 0.1
    audio = heard[[0, 1, 0]]  # the first and last face hear the same
    encoded = []
    hook = model.audio.register_forward_hook(lambda module, args, output: encoded.append(args[0].shape[0]))
    together = score_clips(model, faces, audio)
    hook.remove()
    assert encoded == [2]
    for clip in range(3):
        alone = score_clip(model, faces[clip:clip + 1], audio[clip:clip + 1])
        assert torch.allclose(together[clip].probs, alone.probs, atol=1e-5)
    model.train()
    assert model.sound(audio, 30).shape == (3, 30, 128)  # training encodes every row (no search for equal ones)
