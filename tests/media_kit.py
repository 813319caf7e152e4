"""Media that a careless encoder or a live sender makes, built with PyAV from a test's own clip: MPEG-TS (files
joined end to end, a changed size), several audio streams, a clock far from the audio's, a pipe fed at a pace;
and what a live run writes, read back and checked."""

from __future__ import annotations

import json
import os
import select
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def to_ts(video: Path, out: Path, size: tuple[int, int] | None = None, seconds: float | None = None) -> Path:
    """``video`` as MPEG-TS (H.264 + AAC, re-encoded by PyAV), optionally scaled to ``size`` or cut short."""
    with av.open(str(video)) as source, av.open(str(out), "w", format="mpegts") as sink:
        vin, ain = source.streams.video[0], source.streams.audio[0]
        vout = sink.add_stream("libx264", rate=25)
        vout.width, vout.height = size or (vin.codec_context.width // 2 * 2, vin.codec_context.height // 2 * 2)
        vout.pix_fmt, vout.options = "yuv420p", {"preset": "ultrafast", "tune": "zerolatency"}
        aout = sink.add_stream("aac", rate=ain.codec_context.sample_rate)
        count = 0
        for frame in source.decode(vin, ain):
            if seconds is not None and frame.time > seconds:
                continue
            if isinstance(frame, av.VideoFrame):
                frame = frame.reformat(vout.width, vout.height)
                frame.pts, frame.time_base, count = count, Fraction(1, 25), count + 1
                sink.mux(vout.encode(frame))
            else:
                frame.pts = None
                sink.mux(aout.encode(frame))
        sink.mux(vout.encode(None))
        sink.mux(aout.encode(None))
    return out


def joined(parts: list[Path], out: Path) -> Path:
    """MPEG-TS files joined end to end, byte by byte (each part's clock starts again: time jumps back)."""
    out.write_bytes(b"".join(part.read_bytes() for part in parts))
    return out


def remuxed(video: Path, out: Path, options: dict | None = None) -> Path:
    """``video``'s packets in another container (the format from ``out``'s suffix), e.g. an MP4 with
    ``{"movflags": "faststart"}`` (its index first: readable from a pipe)."""
    with av.open(str(video)) as source, av.open(str(out), "w", options=options or {}) as sink:
        streams = {stream.index: sink.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                sink.mux(packet)
    return out


def _decoded(video: Path) -> tuple[list[np.ndarray], np.ndarray, int, float]:
    """``video``'s frames (RGB), its audio ``(channels, N)`` float32, its sample rate and its fps."""
    with av.open(str(video)) as source:
        vin, ain = source.streams.video[0], source.streams.audio[0]
        fps = float(vin.average_rate)
        frames, audio = [], []
        for frame in source.decode(vin, ain):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                audio.append(frame.to_ndarray().reshape(-1)[None].astype(np.float32) if not frame.format.is_planar
                             else frame.to_ndarray()[:1].astype(np.float32))
        return frames, np.concatenate(audio, axis=1), ain.codec_context.sample_rate, fps


def restamped(video: Path, out: Path, audio_tracks: tuple[str, ...] = ("own",), video_start: float = 0.0) -> Path:
    """``video`` re-encoded as Matroska (H.264, one AAC track per entry of ``audio_tracks``: ``own`` its sound,
    ``silent`` zeros), its video timestamps starting at ``video_start`` s while the audio starts at 0."""
    frames, audio, rate, fps = _decoded(video)
    with av.open(str(out), "w", format="matroska") as sink:
        vout = sink.add_stream("libx264", rate=round(fps))
        vout.width, vout.height = frames[0].shape[1] // 2 * 2, frames[0].shape[0] // 2 * 2
        vout.pix_fmt, vout.options = "yuv420p", {"preset": "ultrafast"}
        vout.time_base = Fraction(1, 1000)
        outs = [sink.add_stream("aac", rate=rate, layout="mono") for _ in audio_tracks]
        for kind, stream in zip(audio_tracks, outs):  # the audio first: its clock starts at 0, before the video's
            samples = audio if kind == "own" else np.zeros_like(audio)
            for start in range(0, samples.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]),
                                                   format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
                sink.mux(stream.encode(chunk))
            sink.mux(stream.encode(None))
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:vout.height, :vout.width]), format="rgb24")
            frame.pts = int(round(video_start * 1000)) + int(round(index * 1000 / fps))  # ms, the same steps
            frame.time_base = Fraction(1, 1000)
            sink.mux(vout.encode(frame))
        sink.mux(vout.encode(None))
    return out


def feed(data: bytes, seconds: float, stall: bool = False) -> int:
    """A pipe's read end, written from a thread at the pace of ``seconds`` of stream (as a live sender would);
    closed at the end unless ``stall`` (then it stays open, silent)."""
    read, write = os.pipe()

    def send() -> None:
        step = max(1, len(data) // 100)
        try:
            for start in range(0, len(data), step):
                os.write(write, data[start:start + step])
                time.sleep(seconds / 100)
            watch = select.poll()
            watch.register(write, select.POLLERR)
            while stall and not watch.poll(200):  # silent and open until the reader goes away
                pass
        except BrokenPipeError:
            pass
        os.close(write)

    threading.Thread(target=send, daemon=True).start()
    return read


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_stream(lines: list[dict], frames: int | None = None) -> list[dict]:
    """A live JSON-lines stream: a start event first, an end event last, frame lines in frame order with faces
    in [0, 1], and (given ``frames``, the source's count) every frame either decided or said dropped; returns the
    frame lines."""
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "end", (lines[0], lines[-1])
    decided = [line for line in lines if "frame" in line]
    indices = [line["frame"] for line in decided]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    if frames is not None:
        assert len(decided) + sum(line["frames"] for line in lines if line.get("event") == "dropped") == frames
    for line in decided:
        for face in line["faces"]:
            assert 0.0 <= face["prob"] <= 1.0 and face["speaking"] == (face["prob"] >= 0.5)
            assert len(face["box"]) == 4 and "map" in face and len(face["region"]) == 3
    assert lines[-1]["decided"] == len(decided)
    return decided


def decoded_frames(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))
