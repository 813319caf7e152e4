"""Light-ASD in asd-se: its published weights (shipped in the package) imported by a name map, parity with the
reference implementation's own outputs on real face tracks (``tests/fixtures/lightasd``), its MFCC and crop as
options of THE front end and THE crop, bad weight files refused, fine-tuning with an SE block from the imported
weights, the shipped models usable by name."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from asd_se.models.checkpoint import save_checkpoint

from asd_se.cli import main
from asd_se.core.crop import face_crop, smooth_crop_boxes
from asd_se.models.frontend import MfccFrontEnd
from asd_se.models.loading import load_checkpoint, load_model
from asd_se.models.zoo import DEFAULT_MODEL, SHIPPED, models_table
from asd_se.scoring.engine import audio_span, score_track
from asd_se.training.features import FROZEN

WEIGHTS = SHIPPED["lightasd-ava"].path.parent  # the package's copy of Light-ASD's weight/ folder
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "lightasd"
PUBLISHED = ("pretrain_AVA_CVPR", "finetuning_TalkSet")
LIGHTASD_DURATIONS = (1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)  # Columbia_test.py's list, as the reference used it


def _tracks() -> list[str]:
    return [t["track"] for t in json.loads((REFERENCE / "index.json").read_text())]


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    """Both published weight files imported with the SE block inserted (identity start)."""
    folder = tmp_path_factory.mktemp("lightasd")
    return {name: _imported(folder, name, se=True) for name in PUBLISHED}


def _imported(folder: Path, name: str, se: bool) -> Path:
    out = folder / f"{name}{'_se' if se else ''}.pt"
    assert main(["import", "lightasd", str(WEIGHTS / f"{name}.model"), "-o", str(out)] + (["--se"] if se else [])) == 0
    return out


@pytest.mark.parametrize("track", _tracks())
def test_mfcc_option_matches_the_reference_within_1e3(track):
    reference = np.load(REFERENCE / f"{track}.npz")
    frontend = MfccFrontEnd("lightasd")
    frames = len(reference["mfcc"]) // 4  # python_speech_features gives 4·T − 1 frames for T frames of audio
    audio = audio_span(reference["audio"].astype(np.float32) / 32768.0, 0, frames, frontend.context)
    ours = frontend(torch.from_numpy(audio)[None], frames)[0].T.numpy()  # (4·frames, 13), as the engine feeds it
    assert np.abs(ours - reference["mfcc"][:4 * frames]).max() < 1e-3


@pytest.mark.parametrize("weights", PUBLISHED)
def test_imported_scores_match_the_reference_within_1e3_whole_and_over_durations(imported, weights):
    model, config = load_model(imported[weights], torch.device("cpu"))
    assert config.model.se and config.model.frontend == config.model.crop == "lightasd"
    for track in _tracks():
        reference = np.load(REFERENCE / f"{track}.npz")
        frames = len(reference[f"score_{weights}_whole"])  # the reference scores T − 1 frames (its MFCC count)
        faces, audio = reference["faces"][:frames], reference["audio"].astype(np.float32) / 32768.0
        whole = score_track(model, faces, audio, torch.device("cpu"))
        assert np.abs(whole.scores - reference[f"score_{weights}_whole"]).max() < 1e-3, track
        assert np.abs(whole.probs - reference[f"prob_{weights}_whole"]).max() < 1e-3, track
        averaged = score_track(model, faces, audio, torch.device("cpu"), durations=LIGHTASD_DURATIONS)
        assert np.abs(averaged.scores - reference[f"score_{weights}_durations"]).max() < 1e-3, track


def test_crop_option_reproduces_the_reference_faces():
    reference = np.load(REFERENCE / "carphone_talk_0.npz")  # the track with source frames and detector boxes
    boxes = smooth_crop_boxes(reference["boxes"], "lightasd")
    centre_and_half = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                                (boxes[:, 2] - boxes[:, 0]) / 2], axis=1)
    assert np.allclose(centre_and_half, reference["smoothed_xys"])
    crops = np.stack([face_crop(frame, tuple(box), style="lightasd")[0]  # frames stored grey (as BGR -> grey)
                      for frame, box in zip(reference["source_frames_gray"], boxes)])
    within_one = np.abs(crops.astype(int) - reference["faces"].astype(int)) <= 1
    assert within_one.mean() >= 0.99


def test_the_se_block_starts_as_the_identity(imported, tmp_path):
    plain, _ = load_model(_imported(tmp_path, "finetuning_TalkSet", se=False), torch.device("cpu"))
    with_se, _ = load_model(imported["finetuning_TalkSet"], torch.device("cpu"))
    faces = torch.randint(0, 256, (1, 30, 112, 112), dtype=torch.uint8)
    audio = torch.randn(1, 30 * 640) * 0.1
    with torch.no_grad():
        a, b = plain(faces, audio), with_se(faces, audio, explain=True)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.scores, b.scores)
    assert torch.all(b.se_weights == 1.0)


def test_the_checkpoint_records_its_source_and_loads_weights_only(imported):
    payload = torch.load(imported["pretrain_AVA_CVPR"], map_location="cpu", weights_only=True)
    source = payload["source"]
    assert source["file"] == "pretrain_AVA_CVPR.model" and len(source["sha256"]) == 64
    assert "MIT" in source["licence"] and payload["config"]["model"]["variant"] == "lightasd"


def _state_dict_file(path: Path, state: dict) -> Path:
    torch.save(state, path)
    return path


def test_bad_weight_files_are_named_and_nothing_is_written(imported, tmp_path, capsys):
    state = torch.load(WEIGHTS / "pretrain_AVA_CVPR.model", map_location="cpu", weights_only=True)
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes((WEIGHTS / "pretrain_AVA_CVPR.model").read_bytes()[:200_000])
    renamed = {k.replace("visualEncoder", "videoEncoder"): v for k, v in state.items()}
    reshaped = {**state, "lossAV.FC.weight": torch.zeros(3, 128)}
    not_state_dict = "not a Light-ASD state dict"
    cases = {
        truncated: ["not a Light-ASD weight file (not a torch.save archive; truncated?)"],
        _state_dict_file(tmp_path / "renamed.model", renamed): [not_state_dict, "unknown keys (e.g. model.videoEnc",
                                                                "missing (e.g. visual.layers"],
        _state_dict_file(tmp_path / "missing.model", {k: v for k, v in state.items() if "GRU" not in k}):
            [not_state_dict, "8 missing (e.g. backend.forward_gru"],
        _state_dict_file(tmp_path / "reshaped.model", reshaped): [not_state_dict, "wrong shapes: lossAV.FC.weight "
                                                                                  "(3, 128) (expected (2, 128))"],
        imported["pretrain_AVA_CVPR"]: ["is already an asd-se checkpoint"],
        _state_dict_file(tmp_path / "list.model", [1, 2]): [not_state_dict],
    }
    for path, messages in cases.items():
        out = tmp_path / "out.pt"
        assert main(["import", "lightasd", str(path), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"asd-se import: error: {path}: {messages[0]}") and all(m in err for m in messages), err
        assert not out.exists() and not list(tmp_path.glob(".out*"))
    assert zipfile.is_zipfile(WEIGHTS / "pretrain_AVA_CVPR.model")  # inputs untouched


def test_render_a_real_clip_with_the_imported_model(tmp_path):
    from real_media import talking_clip

    from asd_se.render.pipeline import RenderSettings, render_video

    clip = talking_clip(tmp_path / "carphone_talk.mp4")
    plain = _imported(tmp_path, "finetuning_TalkSet", se=False)
    out = tmp_path / "out.mp4"
    result = render_video(clip, plain, out, settings=RenderSettings(preset="ultrafast"), progress=False)
    report = json.loads(out.with_suffix(".json").read_text())
    assert result.tracks == 1 and report["explainer"] == "gradcam" and report["crop"] == "lightasd"
    assert any("no SE block; heatmaps are Grad-CAM's" in note for note in report["notes"])
    assert report["tracks"][0]["frames"][40]["heatmap_peak"]
    for se_map in ("se", "se_contrast"):  # both need the SE vector: refused before anything is written
        assert main(["render", str(clip), "--checkpoint", str(plain), "-o", str(tmp_path / "se.mp4"),
                     "--explainer", se_map]) == 1
        assert not (tmp_path / "se.mp4").exists()


def test_fine_tuning_from_the_import_starts_at_its_outputs_and_moves_the_se_block(synth_root, tmp_path):
    plain = _imported(tmp_path, "pretrain_AVA_CVPR", se=False)
    store = tmp_path / "store"
    assert main(["prep", "--annotations", str(synth_root / "annotations"), "--videos", str(synth_root / "videos"),
                 "--out", str(store), "--checkpoint", str(plain)]) == 0
    from asd_se.models.config import Config, load_config
    from asd_se.training.loop import Trainer

    base = Config(model=Config.from_dict(load_checkpoint(plain)["config"]).model)
    config = load_config(None, ["model.se=true", "train.epochs=1", "train.frame_budget=100", "train.max_frames=25",
                                "train.min_frames=10", "train.device=cpu", "train.lr=1e-3"], base)
    trainer = Trainer(config, store, tmp_path / "run", init=plain)
    original, _ = load_model(plain, torch.device("cpu"))
    faces = torch.randint(0, 256, (1, 25, 112, 112), dtype=torch.uint8)
    audio = torch.randn(1, 25 * 640) * 0.1
    trainer.model.eval()
    with torch.no_grad():
        # step 0 is the published model (load_model's convolutions run channels-last: rounding differs by ~1e-6)
        assert torch.allclose(trainer.model(faces, audio).logits, original(faces, audio).logits, atol=1e-4)
    trainer.fit()
    tuned, _ = load_model(tmp_path / "run" / "last.pt", torch.device("cpu"))
    with torch.no_grad():
        se = tuned(faces, audio, explain=True).se_weights
    assert (se - 1.0).abs().max() > 1e-3  # the SE vector has moved off its identity start


def test_a_store_of_one_crop_style_is_refused_to_a_model_of_another(store_root, checkpoint, tmp_path, capsys):
    lightasd_like = tmp_path / "lightasd_like.pt"
    payload = load_checkpoint(checkpoint)
    payload["config"]["model"]["crop"] = "lightasd"
    save_checkpoint(lightasd_like, {k: v for k, v in payload.items() if k not in ("format", "version")})
    assert main(["evaluate", "--checkpoint", str(lightasd_like), "--data", str(store_root)]) == 1
    assert "crops are of the 'asd-se' style, but" in capsys.readouterr().err


def test_a_real_models_heatmaps_land_on_the_speaking_mouth(imported, synth_root, tmp_path):
    """The imported TalkSet model (SE inserted at its identity start, so its map is the mean of every channel)
    on the tiny synthetic set cut with its own crop: the map's peak lies in the mouth box of speaking faces. This
    exercises the whole explanation path — the lightasd crop, mouth boxes mapped onto it, the SE explainer."""
    from asd_se.explain_eval.evaluation import ExplainEvalConfig, evaluate_explainers
    from asd_se.explain_eval.mouths import load_mouth_boxes
    from data_prep.store import TrackStore

    checkpoint = imported["finetuning_TalkSet"]
    store_root = tmp_path / "store"
    assert main(["prep", "--annotations", str(synth_root / "annotations" / "val.csv"), "--videos",
                 str(synth_root / "videos"), "--out", str(store_root), "--checkpoint", str(checkpoint)]) == 0
    store = TrackStore.open(store_root)
    model, _ = load_model(checkpoint, torch.device("cpu"))
    result = evaluate_explainers(model, store, load_mouth_boxes(store, "val"),
                                 ExplainEvalConfig(methods=("se",), max_frames=300, steps=1), torch.device("cpu"),
                                 progress=False)
    se = result.methods["se"]
    assert se["n_pointing_speaking"] >= 20 and se["pointing_speaking"] >= 0.8
    assert se["energy_speaking"] > 0.3  # a third of the map's energy in the mouth box, a small part of the crop


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_loads_by_name_and_is_the_import_of_its_file(name, tmp_path):
    shipped = SHIPPED[name]
    imported = tmp_path / "imported.pt"
    assert main(["import", shipped.family.variant, str(shipped.path), "-o", str(imported)] +
                (["--se"] if shipped.se else [])) == 0
    by_name, config = load_model(name, torch.device("cpu"))
    by_file, _ = load_model(imported, torch.device("cpu"))
    assert config.model.se == shipped.se
    # a fine-tuned model: the import of its published file, but for the parts asd-se trained (an encoder only
    # where its run froze nothing)
    tuned = torch.load(shipped.trained_path, weights_only=True) if shipped.trained else {"model": {}}
    trained = tuned["model"]
    assert bool(trained) == bool(shipped.trained)
    if shipped.trained and tuned["config"]["train"]["freeze"] == "encoders":
        assert not any(key.startswith(FROZEN) for key in trained)
    for (key, ours), theirs in zip(by_name.state_dict().items(), by_file.state_dict().values()):
        assert torch.equal(ours, trained.get(key, theirs)), key
    assert load_checkpoint(name)["source"]["shipped"] == name


def test_models_lists_every_shipped_model_with_its_sha256(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out == models_table() and f"{DEFAULT_MODEL} (render's default)" in out
    for model in SHIPPED.values():
        assert model.name in out and model.sha256() in out and model.licence in out


def test_models_prints_the_validation_table_by_slice(monkeypatch):
    from asd_se.models import zoo

    measured = {"conditions": "val split of a test store", "slices": ["all", "scene-panel"],
                "models": {"lrasd-ava": {"all": [46.6, 40.4, 53.8], "scene-panel": [70.25, 60.0, 80.5]},
                           "lrasd-talkset": {"all": [34.0, 30.0, 39.6]}},
                "measures": {"lrasd-ava": {"whose voice (scenes)": 0.5065, "median onset error (ms)": 40.0},
                             "lrasd-talkset": {"whose voice (scenes)": 0.373}}}
    monkeypatch.setattr(zoo, "validation", lambda: measured)
    lines = zoo.models_table().splitlines()
    start = lines.index("multi-domain validation (mAP [95% interval]; val split of a test store)")
    header, ava, ava_interval, talkset = lines[start + 1:start + 5]
    assert header.split() == ["all", "scene-panel"]
    assert ava.split() == ["lrasd-ava", "46.6", "70.2"] and ava_interval.split() == ["[40.4,", "53.8]", "[60.0,",
                                                                                     "80.5]"]
    assert talkset.split() == ["lrasd-talkset", "34.0", "-"]  # a slice not measured on it
    assert "whose voice (scenes): lrasd-ava 0.51; lrasd-talkset 0.37" in lines
    assert "median onset error (ms): lrasd-ava 40; lrasd-talkset -" in lines


def test_render_without_a_checkpoint_uses_the_shipped_default(tmp_path):
    from real_media import talking_clip

    clip = talking_clip(tmp_path / "carphone_talk.mp4", seconds=3.0)
    assert main(["render", str(clip), "-o", str(tmp_path / "out.mp4"), "--preset", "ultrafast"]) == 0
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["checkpoint"] == DEFAULT_MODEL and report["crop"] == "lightasd" and report["tracks"]
