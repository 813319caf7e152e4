"""``train.freeze: encoders``: the frozen encoders' features decide as the scoring engine does, a run trains only
the SE block and what follows it, and its val mAP is what ``asd-se evaluate`` measures on its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asd_se.cli import main
from asd_se.core.errors import ConfigError
from asd_se.models.config import load_config
from asd_se.models.loading import load_model
from asd_se.scoring.engine import live_windows, score_track
from asd_se.training.batches import FeatureBatchDataset, LiveWindows, Window
from asd_se.training.features import FROZEN, SplitFeatures, decide_track, load_features, predict_features
from data_prep.store import TrackMeta, TrackRows, TrackStore

BASE = "lrasd-talkset-se"  # a shipped model: LR-ASD's published TalkSet weights, SE block at its identity start


@pytest.fixture(scope="module")
def lightasd_store(synth_root, tmp_path_factory):
    """The tiny synthetic set cut with the shipped model's own crop."""
    root = tmp_path_factory.mktemp("frozen") / "store"
    assert main(["prep", "--annotations", str(synth_root / "annotations"), "--videos", str(synth_root / "videos"),
                 "--out", str(root), "--checkpoint", BASE]) == 0
    return root


def test_features_decide_as_the_scoring_engine_does_and_are_kept(lightasd_store, tmp_path):
    store = TrackStore.open(lightasd_store)
    model, _ = load_model(BASE, torch.device("cpu"))
    metas = store.tracks("val")
    features = load_features(model, store, metas, tmp_path / "cache", torch.device("cpu"), progress=False)
    assert features.pooled.shape == (sum(m.frames for m in metas), 128, 2)
    for i, meta in enumerate(metas):
        faces, audio = store.load(meta)
        engine = score_track(model, faces, audio, torch.device("cpu"))
        mine = decide_track(model, features, i)
        for theirs, ours in zip((engine.probs, engine.audio_probs, engine.visual_probs), mine):
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
    (folder,) = (tmp_path / "cache").iterdir()
    stamp = (folder / "pooled.npy").stat().st_mtime_ns
    again = load_features(model, store, metas, tmp_path / "cache", torch.device("cpu"), progress=False)
    assert (folder / "pooled.npy").stat().st_mtime_ns == stamp and np.array_equal(again.pooled, features.pooled)
    model.se.excite[0].weight.data += 1  # the SE block is not frozen: its weights do not change the key
    assert load_features(model, store, metas, tmp_path / "cache", torch.device("cpu"), progress=False)
    model.visual.layers[0][0].bn.running_mean += 1  # an encoder's buffer does
    load_features(model, store, metas[:1], tmp_path / "cache", torch.device("cpu"), progress=False)
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_a_frozen_run_trains_only_the_se_block_and_after_and_evaluate_agrees(lightasd_store, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(lightasd_store), "--out", str(run), "--init", BASE, "--features",
            str(tmp_path / "features")]
    for setting in ("train.freeze=encoders", "train.voice_swap=0.5", "train.live_windows=0.5", "train.epochs=2",
                    "train.frame_budget=200",
                    "train.max_frames=50", "train.min_frames=10", "train.lr=3e-3", "train.device=cpu"):
        args += ["--set", setting]
    assert main(args) == 0
    start, _ = load_model(BASE, torch.device("cpu"))
    tuned, config = load_model(run / "last.pt", torch.device("cpu"))
    assert config.train.freeze == "encoders"
    before, after = start.state_dict(), tuned.state_dict()
    for name in before:
        assert torch.equal(before[name], after[name]) == name.startswith(FROZEN), name
    assert not tuned.se.untrained
    val_map = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val_map"]
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run / "last.pt"), "--data", str(lightasd_store)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("mAP (audio-visual)"))
    assert float(line.split()[2]) == pytest.approx(100 * val_map, abs=0.01)


def _features(videos: list[str], frames: int = 30) -> SplitFeatures:
    metas = [TrackMeta(video, f"{video}:0", "train", 25.0, 0.0, frames, [1] * frames, TrackRows(), "f.npz", "m")
             for video in videos]
    count = frames * len(videos)
    pooled = np.arange(count, dtype=np.float32)[:, None, None].repeat(4, 1).repeat(2, 2)
    sound = np.repeat(np.arange(len(videos), dtype=np.float32), frames)[:, None].repeat(3, 1)  # the video's index
    return SplitFeatures(metas, np.arange(len(videos) + 1) * frames, pooled, sound)


def test_a_swapped_voice_comes_from_another_video_and_is_never_speaking():
    features = _features(["a", "b", "c"])
    batches = [[Window(0, 5, 20), Window(1, 0, 20)]] * 40
    swapped = kept = 0
    for index in range(len(batches)):
        pooled, sound, labels = FeatureBatchDataset(features, batches, 0.5, seed=3, epoch=0)[index]
        assert pooled.shape == (2, 4, 20, 2) and sound.shape == (2, 20, 3)
        assert torch.equal(pooled[0, 0, :, 0], torch.arange(5, 25, dtype=torch.float32))  # frames never move
        for row, window in enumerate(batches[index]):
            heard = int(sound[row, 0, 0])
            if heard == window.track:
                kept += 1
                assert labels[row].all()
            else:
                swapped += 1
                assert not labels[row].any()
    assert 20 < swapped < 60 and swapped + kept == 80
    untouched = FeatureBatchDataset(features, batches, 0.0, seed=3, epoch=0)[0]
    assert untouched[2].all()


def test_voice_swap_without_frozen_encoders_is_refused():
    with pytest.raises(ConfigError, match="train.freeze=encoders"):
        load_config(None, ["train.voice_swap=0.3"])
    with pytest.raises(ConfigError, match="train.freeze"):
        load_config(None, ["train.freeze=everything"])


def test_live_spans_decide_each_frame_once_and_whole_views_match_the_engine(lightasd_store, tmp_path):
    assert live_windows(7, context=2, lookahead=1, hop=3) == [(0, 4, 0, 3), (1, 7, 3, 6), (4, 7, 6, 7)]
    store = TrackStore.open(lightasd_store)
    model, _ = load_model(BASE, torch.device("cpu"))
    features = load_features(model, store, store.tracks("val")[:2], tmp_path, torch.device("cpu"), progress=False)
    whole = predict_features(model, features)
    in_view = predict_features(model, features, lambda frames: live_windows(frames, frames, frames))
    assert [p.key for p in in_view] == [p.key for p in whole]
    np.testing.assert_allclose([p.score for p in in_view], [p.score for p in whole], atol=1e-5)
    blind = predict_features(model, features, lambda frames: live_windows(frames, 10, 0))  # no future: differs
    assert max(abs(a.score - b.score) for a, b in zip(blind, whole)) > 1e-3


def test_live_windows_leave_only_the_frames_with_a_short_future_labelled():
    features = _features(["a", "b"])
    batches = [[Window(0, 0, 30), Window(1, 0, 30)]] * 40
    live = LiveWindows(share=0.5, future=4)
    masked = 0
    for index in range(len(batches)):
        labels = FeatureBatchDataset(features, batches, 0.0, seed=1, epoch=0, live=live)[index][2]
        for row in labels:
            if torch.isnan(row).any():
                masked += 1
                assert torch.isnan(row[:25]).all() and row[25:].eq(1).all()
            else:
                assert row.eq(1).all()
    assert 20 < masked < 60
    plain = FeatureBatchDataset(features, batches, 0.0, seed=1, epoch=0)[0][2]
    assert not torch.isnan(plain).any()


def test_the_loss_ignores_unlabelled_frames():
    from asd_se.models.output import ASDOutput
    from asd_se.training.loop import training_loss

    logits = torch.tensor([[5.0, -3.0, 0.5, 2.0]], requires_grad=True)
    labels = torch.tensor([[float("nan"), float("nan"), 1.0, 0.0]])
    loss = training_loss(ASDOutput(logits, logits, logits), labels, aux_weight=0.4)
    expected = 1.8 * torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 2:], labels[0, 2:])
    assert torch.isclose(loss, expected)
    loss.backward()
    assert logits.grad[0, :2].eq(0).all() and logits.grad[0, 2:].ne(0).all()


def test_se_sparsity_adds_the_mean_se_value_to_the_loss_and_reaches_the_gates():
    from asd_se.models.output import ASDOutput
    from asd_se.training.loop import training_loss

    logits = torch.tensor([[1.0, -2.0]])
    labels = torch.tensor([[1.0, 0.0]])
    gates = torch.tensor([[0.5, 1.5, 1.0]], requires_grad=True)
    output = ASDOutput(logits, logits, logits, se_weights=gates)
    plain = training_loss(output, labels, aux_weight=0.4)
    sparse = training_loss(output, labels, aux_weight=0.4, se_sparsity=0.3)
    assert torch.isclose(sparse - plain, torch.tensor(0.3 * 1.0))
    sparse.backward()
    assert torch.allclose(gates.grad, torch.full((1, 3), 0.1))


def test_se_sparsity_needs_an_se_block():
    with pytest.raises(ConfigError, match="train.se_sparsity"):
        load_config(None, ["train.se_sparsity=0.1", "model.se=false"])
    assert load_config(None, ["train.se_sparsity=0.1"]).train.se_sparsity == 0.1


def test_a_run_with_se_sparsity_sinks_the_gates_the_decision_does_not_need(lightasd_store, tmp_path):
    """Frozen encoders, the same seed and data with and without the term: the SE vectors over the val features
    end lower with it (at the identity start every gate is 1)."""
    store = TrackStore.open(lightasd_store)
    means = {}
    for sparsity in (0.0, 5.0):
        run = tmp_path / f"run{sparsity}"
        args = ["train", "--data", str(lightasd_store), "--out", str(run), "--init", BASE, "--features",
                str(tmp_path / "features")]
        for setting in ("train.freeze=encoders", "train.epochs=2", "train.frame_budget=200", "train.max_frames=50",
                        "train.min_frames=10", "train.lr=3e-2", "train.device=cpu", f"train.se_sparsity={sparsity}"):
            args += ["--set", setting]
        assert main(args) == 0
        model, config = load_model(run / "last.pt", torch.device("cpu"))
        assert config.train.se_sparsity == sparsity
        features = load_features(model, store, store.tracks("val"), tmp_path / "features", torch.device("cpu"),
                                 progress=False)
        with torch.no_grad():
            means[sparsity] = float(model.se.weigh(torch.from_numpy(features.pooled[..., 0]).T[None]).mean())
    assert means[5.0] < means[0.0] - 0.1, means
