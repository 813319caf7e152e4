"""``asd-se live``: the streamed encoder is the offline one, live decisions with the whole track in view are
render's, and a live run on a file, on stdin and on an HTTP stream from 127.0.0.1 ends with every frame decided in
order and a playable MP4 — also when it is stopped, stalls, or its picture changes size."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asd_se.cli import main
from asd_se.core.annotations import read_csv
from asd_se.core.media import SAMPLES_PER_FRAME, probe
from asd_se.explain import ChannelSelection, build_explainer
from asd_se.faces.detect import FaceDetector
from asd_se.live.buffers import AudioRing
from asd_se.live.decide import LiveDecider
from asd_se.live.faces import LiveTrack
from asd_se.live.pipeline import Pace, _Run
from asd_se.live.sound import SoundStream
from asd_se.models import build_model
from asd_se.models.config import ModelConfig
from asd_se.models.loading import load_runtime
from asd_se.models.streaming import EncoderStream, chain_layers
from asd_se.scoring.engine import score_track
from asd_se.video.tracks import FaceFinder
from data_prep.synth.dataset import write_video
from data_prep.synth.plan import VideoSpec
from media_kit import check_stream, decoded_frames, feed, read_lines, to_ts

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def lrasd():
    model, _ = load_runtime(Path("lrasd-talkset-se"), CPU, "torch")
    return model.eval()


@pytest.fixture(scope="module")
def clip(synth_root) -> Path:
    """The synthetic val video (6 s, faces speaking and silent, with audio)."""
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    return synth_root / "videos" / f"{rows[0].video_id}.mp4"


# --- the streamed encoder and the decider ---------------------------------------------------------------------

def test_a_streamed_encoder_gives_the_maps_of_one_pass_whatever_the_pieces(lrasd):
    layers = chain_layers(lrasd.visual)
    assert layers is not None
    faces = torch.randint(0, 256, (1, 47, 112, 112), dtype=torch.uint8)
    with torch.no_grad():
        whole = lrasd.visual_maps(faces)
        stream, parts, start = EncoderStream(layers), [], 0
        for count in (1, 2, 9, 3, 17, 15):
            out = stream.push(lrasd.normalise(faces[:, start:start + count]).unsqueeze(1))
            start += count
            parts += [out] if out is not None else []
            done = sum(part.shape[2] for part in parts)
            assert done == max(0, start - lrasd.visual.temporal_radius)  # final once its reach has arrived
            tail = stream.tail()  # a clip ending here, without ending the stream
            ending = torch.cat(parts + [tail], dim=2)
            assert torch.allclose(ending, lrasd.visual_maps(faces[:, :start]), atol=1e-5)
        streamed = torch.cat(parts + [stream.tail()], dim=2)
    assert torch.allclose(streamed, whole, atol=1e-5), (streamed - whole).abs().max()


@pytest.mark.parametrize("variant,frontend", [("light", "asd-se"), ("light", "lightasd"), ("lightasd", "lightasd"),
                                              ("lrasd", "lightasd")])
def test_the_streamed_audio_embedding_is_one_pass_over_the_whole_recording(variant, frontend):
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=variant, frontend=frontend, map_size=7 if variant == "light" else 14))
    model.eval()
    frames, (before, after) = 60, model.audio_context
    audio = np.random.default_rng(0).normal(0, 0.1, frames * SAMPLES_PER_FRAME + after).astype(np.float32)

    def clip_ending(last: int) -> torch.Tensor:  # the recording up to sample ``last``, scored as one clip
        wave = np.concatenate([np.zeros(before, np.float32), audio[:last * SAMPLES_PER_FRAME + after]])
        with torch.no_grad():
            return model.sound(torch.from_numpy(wave)[None], last)[0]

    def close(got: torch.Tensor, want: torch.Tensor) -> None:  # to float precision: random weights' scale varies
        assert (got - want).abs().max() <= 1e-4 * want.abs().max(), (got - want).abs().max()

    ring = AudioRing()
    stream, newest = SoundStream(model, ring, CPU), 0
    for count in (1, 2, 9, 3, 1, 17, 4, 15, 8):  # samples arriving per step
        newest += count
        ring.extend(audio[ring.end:newest * SAMPLES_PER_FRAME + after])
        stream.advance(newest)
        first = max(0, newest - 12)
        close(stream.span(first, newest), clip_ending(newest)[first:])
        stream.trim(first)  # the oldest window start still to come; the waveform the stream reads is kept
        ring.trim(stream.needed_from() * SAMPLES_PER_FRAME - before)
    assert newest == frames
    close(torch.stack(stream.final.items), clip_ending(frames)[stream.final.start:stream.final.end])
    assert stream.final.end == frames - stream.reach  # final once its reach has arrived, not later


def test_streams_pushed_and_tailed_together_give_each_stream_its_own_maps(lrasd):
    layers = chain_layers(lrasd.visual)
    faces = torch.randint(0, 256, (2, 30, 112, 112), dtype=torch.uint8)
    with torch.no_grad():
        together, alone = [EncoderStream(layers), EncoderStream(layers)], [EncoderStream(layers), EncoderStream(layers)]
        for start, count in ((0, 4), (4, 11), (15, 15)):
            clips = lrasd.normalise(faces[:, start:start + count]).unsqueeze(1)
            pushed = EncoderStream.push_together(together, clips)
            expected = [stream.push(clips[i:i + 1]) for i, stream in enumerate(alone)]
            for tails in (EncoderStream.tail_together(together), EncoderStream.tail_together(together)):
                for got, want in zip(tails, [stream.tail() for stream in alone]):  # a tail leaves the state
                    assert torch.allclose(got, want, atol=1e-5)
            for got, want in zip(pushed, expected):
                assert (got is None) == (want is None) and (got is None or torch.allclose(got, want, atol=1e-5))
        more = lrasd.normalise(torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8)).unsqueeze(1)
        for got, want in ((together[0].push(more[:1, :, :1]), alone[0].push(more[:1, :, :1])),  # one stream alone,
                          *zip(EncoderStream.push_together(together, more[:, :, 1:]),  # then both together again
                               [stream.push(more[i:i + 1, :, 1:]) for i, stream in enumerate(alone)])):
            assert torch.allclose(got, want, atol=1e-5)


def test_encoders_with_branches_are_not_streamed(checkpoint):
    model, _ = load_runtime(checkpoint, CPU, "torch")
    assert chain_layers(model.visual) is None  # residual blocks: the decider re-encodes the newest frames


@pytest.mark.parametrize("which", ["streamed", "re-encoded"])
def test_live_decisions_with_the_whole_track_in_view_are_the_offline_scores(which, lrasd, checkpoint):
    model = lrasd if which == "streamed" else load_runtime(checkpoint, CPU, "torch")[0].eval()
    rng = np.random.default_rng(0)
    frames = 40
    crops = rng.integers(0, 256, (frames, 112, 112), dtype=np.uint8)
    audio = rng.normal(0, 0.1, frames * SAMPLES_PER_FRAME).astype(np.float32)
    explainer = build_explainer("se", ChannelSelection())
    offline = score_track(model, crops, audio, CPU, [explainer])
    ring = AudioRing()
    ring.extend(audio)
    decider = LiveDecider(model, CPU, explainer, ring, lookahead=frames, context=frames, hop=1)
    track = LiveTrack(0, 0)
    for k in range(frames):  # crops arrive one by one; nothing is decided while the future is out
        track.crops.append(crops[k])
        track.boxes.append(np.zeros(4))
        decider.step([track], k + 1)
    assert track.decided == 0
    track.open = False
    decider.step([track], frames)
    live = np.array([result.prob for result in track.results.items])
    assert np.allclose(live, offline.probs, atol=1e-5), np.abs(live - offline.probs).max()
    maps = np.stack([result.heat for result in track.results.items]).astype(np.float32)
    assert np.allclose(maps, offline.maps["se"], atol=2e-3)


def test_open_maps_give_a_decision_its_whole_lookahead_as_a_clip_ending_now(lrasd):
    rng = np.random.default_rng(1)
    frames, lookahead = 36, 12  # more than LR-ASD's reach (9): without open maps a decision sees 3 samples ahead
    crops = rng.integers(0, 256, (frames, 112, 112), dtype=np.uint8)
    audio = rng.normal(0, 0.1, frames * SAMPLES_PER_FRAME).astype(np.float32)
    ring = AudioRing()
    ring.extend(audio)
    decider = LiveDecider(lrasd, CPU, build_explainer("se", ChannelSelection()), ring, lookahead=lookahead,
                          context=frames, hop=1, open_maps=True)
    track = LiveTrack(0, 0)
    checked = 0
    for k in range(frames):
        track.crops.append(crops[k])
        track.boxes.append(np.zeros(4))
        before = track.decided
        decider.step([track], k + 1)
        for sample in range(before, track.decided):  # the clip as it stood when the sample was decided
            offline = score_track(lrasd, crops[:k + 1], audio, CPU)
            assert abs(track.results.items[sample].prob - offline.probs[sample]) < 1e-5
            assert k + 1 - sample == lookahead + 1
            checked += 1
    assert checked == frames - lookahead


def test_decisions_wait_for_the_lookahead_and_no_longer(lrasd):
    explainer = build_explainer("se", ChannelSelection())
    ring = AudioRing()
    ring.extend(np.zeros(100 * SAMPLES_PER_FRAME, np.float32))
    lookahead, hop = 12, 2
    decider = LiveDecider(lrasd, CPU, explainer, ring, lookahead=lookahead, context=25, hop=hop)
    track = LiveTrack(0, 0)
    for k in range(60):
        track.crops.append(np.full((112, 112), 100, np.uint8))
        track.boxes.append(np.zeros(4))
        decider.step([track], k + 1)
        newest = k + 1
        assert track.decided <= newest - lookahead or track.decided == 0
        assert track.decided >= newest - lookahead - hop + 1 or newest < lookahead + hop
    assert len(track.crops.items) <= 25 + lookahead + hop + lrasd.visual.temporal_radius  # bounded memory


def test_a_streamed_encoder_takes_each_crop_as_it_arrives_not_when_it_is_due(lrasd):
    """With a long lookahead nothing is due for a while; the crops are encoded meanwhile, not in one burst at the
    first decision (at lookahead 2 s that burst decided a stream's first second 0.8 s late)."""
    ring = AudioRing()
    ring.extend(np.zeros(60 * SAMPLES_PER_FRAME, np.float32))
    decider = LiveDecider(lrasd, CPU, build_explainer("se", ChannelSelection()), ring, lookahead=30, context=10)
    encoded = []
    first = lrasd.visual.layers[0][0]  # the first convolution step
    hook = first.register_forward_hook(lambda module, args, output: encoded.append(args[0].shape[2]))
    track = LiveTrack(0, 0)
    for k in range(20):
        track.crops.append(np.full((112, 112), 100, np.uint8))
        track.boxes.append(np.zeros(4))
        decider.step([track], k + 1)
        assert sum(encoded) == k + 1 and track.decided == 0
    hook.remove()


def test_a_frame_waits_for_earlier_detections_but_not_its_own_except_where_only_its_own_gives_boxes():
    finder = FaceFinder(FaceDetector(), detect_every=5)
    finder.detected_frames += [5, 10, 15]  # as needs_detection records them
    run = SimpleNamespace(detecting=deque([5, 10, 15]), faces=SimpleNamespace(finder=finder))
    run._own_boxes = lambda index: _Run._own_boxes(run, index)
    croppable = lambda index: _Run._croppable(run, index)  # noqa: E731
    assert croppable(4) and not croppable(5)  # the stream's first detection: no boxes to hold yet
    run.detecting.popleft()
    finder.track(5, [], 25.0)
    assert croppable(9) and croppable(10)  # frame 10 placed by frame 5's detection
    assert not croppable(11) and not croppable(15)  # after frame 10: its detection is needed
    finder.cut_frames.add(10)
    assert not croppable(10)  # a shot's first frame: the held boxes belong to the shot before
    run.detecting.clear()
    assert croppable(11)


def test_falling_behind_degrades_in_the_stated_order():
    finder = FaceFinder(FaceDetector(), detect_every=5)
    decider = SimpleNamespace(hop=1)
    pace = Pace(finder, decider, enabled=True)
    assert pace.check(0.01) is None
    assert pace.check(0.4) == ("degraded", {"detect_every": 5, "hop_s": 0.08,  # first: decide every other hop
                                            "message": "deciding every 0.08 s, detecting every 5 frames"})
    assert pace.check(0.4) is None  # one change a second at most
    for every in (10, 20):  # then: detect less often, down to 4x rarer than asked
        pace.changed -= 2
        assert pace.check(0.4)[1]["detect_every"] == every and decider.hop == 2
    pace.changed -= 2
    assert pace.check(0.4) is None  # the ladder's top
    assert pace.check(1.5) == ("drop", {})  # then: drop frames
    pace.calm_since -= 10
    assert pace.check(0.0)[0] == "recovered" and finder.detect_every == 10  # calm: one rung down
    for _ in range(2):
        pace.calm_since -= 10
        pace.check(0.0)
    assert (finder.detect_every, decider.hop) == (5, 1)  # all the way back
    pace.calm_since -= 10
    assert pace.check(0.0) is None
    assert Pace(finder, decider, enabled=False).check(5.0) is None  # a file read as fast as it decodes never degrades


# --- whole runs --------------------------------------------------------------------------------------------------

def test_live_on_a_file_decides_every_frame_in_order_and_writes_a_playable_mp4(clip, checkpoint, tmp_path):
    jsonl, out = tmp_path / "live.jsonl", tmp_path / "live.mp4"
    assert main(["live", str(clip), "--checkpoint", str(checkpoint), "--jsonl", str(jsonl), "-o", str(out),
                 "--lookahead", "0.2"]) == 0
    frames = probe(clip)
    decided = check_stream(read_lines(jsonl), decoded_frames(clip))
    assert sum(len(line["faces"]) for line in decided) > 0.8 * len(decided)  # the synthetic faces are found
    assert decoded_frames(out) == len(decided)
    assert probe(out).has_audio and (probe(out).width, probe(out).height) == (frames.width, frames.height)


@pytest.mark.parametrize("fps", [30, 15])
def test_sources_faster_and_slower_than_25_fps_get_every_frame_decided(fps, checkpoint, tmp_path):
    video = tmp_path / f"clip{fps}.mp4"
    write_video(VideoSpec(video.stem, 320, 240, Fraction(fps), 3.0, 16000, 1, seed=3, face_counts=(2,)), video)
    jsonl = tmp_path / "live.jsonl"
    assert main(["live", str(video), "--checkpoint", str(checkpoint), "--jsonl", str(jsonl), "--lookahead", "0"]) == 0
    decided = check_stream(read_lines(jsonl), decoded_frames(video))
    samples = [face["sample"] for line in decided for face in line["faces"][:1]]
    shown = min(len(decided), 3.0 * 25)  # each frame its own sample below 25 fps; above, some frames share one
    assert samples == sorted(samples) and len(set(samples)) == pytest.approx(shown, abs=3)


def test_live_reads_a_stream_on_stdin_at_its_own_pace(clip, checkpoint, tmp_path):
    stream = to_ts(clip, tmp_path / "clip.ts")
    stdin = feed(stream.read_bytes(), probe(clip).duration)
    done = subprocess.run([sys.executable, "-m", "asd_se", "live", "-", "--checkpoint", str(checkpoint),
                           "--lookahead", "0"], stdin=stdin, capture_output=True, text=True, timeout=300)
    os.close(stdin)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    check_stream(lines, decoded_frames(stream))
    assert lines[0]["kind"] == "stdin"


class _Slow(http.server.SimpleHTTPRequestHandler):
    """Serves a file in small pieces, a few a second: a stream that arrives over time."""

    def copyfile(self, source, outputfile) -> None:
        while chunk := source.read(16_384):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(0.02)

    def log_message(self, *args) -> None:
        pass


def test_live_reads_an_http_stream_from_localhost(clip, checkpoint, tmp_path):
    to_ts(clip, tmp_path / "clip.ts")
    handler = lambda *args: _Slow(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    jsonl = tmp_path / "live.jsonl"
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.ts"
        assert main(["live", url, "--checkpoint", str(checkpoint), "--jsonl", str(jsonl)]) == 0
    finally:
        server.shutdown()
    lines = read_lines(jsonl)
    check_stream(lines, decoded_frames(tmp_path / "clip.ts"))
    assert lines[0]["kind"] == "network"


def _live_process(source: str, checkpoint: Path, *options: str, stdin=None, group: bool = False
                  ) -> subprocess.Popen:
    """``asd-se live`` in a child process (``group``: leading a process group of its own, as a terminal's job)."""
    return subprocess.Popen([sys.executable, "-m", "asd_se", "live", source, "--checkpoint", str(checkpoint),
                             *options], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=group)


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path}: fewer than {count} lines ({process.poll()=})")


@pytest.mark.parametrize("name,code,group", [("SIGINT", 130, False), ("SIGTERM", 143, False),
                                             ("SIGINT", 130, True), ("SIGTERM", 143, True)])
def test_a_signal_ends_the_run_with_closed_playable_outputs(name, code, group, clip, checkpoint, tmp_path):
    """Sent to the process, or to its whole process group (Ctrl-C in a terminal, ``timeout``, ``kill -- -PGID``):
    the detector processes get it too, and must leave the ending to the main process."""
    stream = to_ts(clip, tmp_path / "clip.ts")
    jsonl, out = tmp_path / "live.jsonl", tmp_path / "live.mp4"
    stdin = feed(stream.read_bytes(), 30.0, stall=True)  # slower than real time, and it never ends by itself
    process = _live_process("-", checkpoint, "--stall", "120", "--jsonl", str(jsonl), "-o", str(out), stdin=stdin,
                            group=group)
    os.close(stdin)
    _wait_for_lines(jsonl, 20, process)
    if group:
        os.killpg(process.pid, getattr(signal, name))
    else:
        process.send_signal(getattr(signal, name))
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # hung: leave nothing running behind the test
            os.killpg(process.pid, signal.SIGKILL) if group else process.kill()
    assert process.returncode == code, stderr
    lines = read_lines(jsonl)
    decided = check_stream(lines)
    assert lines[-1]["reason"] == name and 0 < len(decided) < decoded_frames(stream)
    assert decoded_frames(out) == len(decided)  # every decided frame is in the MP4, and it plays


def test_a_stalled_source_times_out_with_a_message_and_closed_outputs(clip, checkpoint, tmp_path):
    stream = to_ts(clip, tmp_path / "clip.ts", seconds=3.0)
    jsonl, out = tmp_path / "live.jsonl", tmp_path / "live.mp4"
    stdin = feed(stream.read_bytes(), 3.0, stall=True)  # then nothing more, and the pipe stays open
    process = _live_process("-", checkpoint, "--stall", "2", "--jsonl", str(jsonl), "-o", str(out), stdin=stdin)
    os.close(stdin)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and "error: -: no" in stderr and "for 2 s (the source stalled)" in stderr, stderr
    lines = read_lines(jsonl)
    decided = check_stream(lines)
    assert lines[-1]["reason"] == "stalled" and len(decided) > 25
    assert decoded_frames(out) == len(decided)


def test_a_stream_cut_mid_frame_ends_cleanly(clip, checkpoint, tmp_path):
    stream = to_ts(clip, tmp_path / "clip.ts")
    data = stream.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[:len(data) // 2 + 1001])  # not on a packet boundary
    with open(cut, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "asd_se", "live", "-", "--checkpoint", str(checkpoint)],
                              stdin=stdin, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    decided = check_stream(lines)
    read = len(decided) + sum(line["frames"] for line in lines if line.get("event") == "dropped")  # a busy machine drops
    assert 0.3 * decoded_frames(stream) < read < 0.7 * decoded_frames(stream) and decided


def test_a_picture_that_changes_size_restarts_the_tracks_and_keeps_deciding(clip, checkpoint, tmp_path):
    first = to_ts(clip, tmp_path / "a.ts", seconds=2.0)
    second = to_ts(clip, tmp_path / "b.ts", size=(320, 180), seconds=2.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    jsonl, out = tmp_path / "live.jsonl", tmp_path / "live.mp4"
    stdin = feed(joined.read_bytes(), probe(first).duration + probe(second).duration)
    done = subprocess.run([sys.executable, "-m", "asd_se", "live", "-", "--checkpoint", str(checkpoint),
                           "--jsonl", str(jsonl), "-o", str(out)], stdin=stdin, capture_output=True, text=True,
                          timeout=300)
    os.close(stdin)
    assert done.returncode == 0, done.stderr
    lines = read_lines(jsonl)
    changes = [line for line in lines if line.get("event") == "resolution"]
    assert len(changes) == 1 and (changes[0]["width"], changes[0]["height"]) == (320, 180)
    decided = check_stream(lines, decoded_frames(first) + decoded_frames(second))
    after = [line for line in decided if line["frame"] >= decoded_frames(first)]
    assert after and max(max(face["box"][2] for face in line["faces"]) for line in after if line["faces"]) <= 320
    assert (probe(out).width, probe(out).height) == (probe(first).width, probe(first).height)


@pytest.mark.parametrize("args,message", [
    (["/no/such/video.mp4"], "/no/such/video.mp4: no such file"),
    (["http://127.0.0.1:9/none.ts", "--stall", "2"], "http://127.0.0.1:9/none.ts: cannot be opened"),
    (["{clip}", "-o", "{tmp}/out.avi"], "must be an .mp4"),
    (["{clip}", "--jsonl", "{clip}"], "is an input of this command"),
])
def test_sources_and_outputs_that_cannot_be_used_are_refused(args, message, clip, checkpoint, tmp_path, capsys):
    args = [a.format(clip=clip, tmp=tmp_path) for a in args]
    assert main(["live", *args, "--checkpoint", str(checkpoint)]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.avi").exists()


def test_a_negative_lookahead_is_a_usage_error(clip, checkpoint):
    with pytest.raises(SystemExit) as stop:
        main(["live", str(clip), "--checkpoint", str(checkpoint), "--lookahead", "-1"])
    assert stop.value.code == 2
