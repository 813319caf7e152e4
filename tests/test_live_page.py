"""``asd-se live --serve``: the page on 127.0.0.1 in a real browser (``tests/browser.py``) shows the stream with its
faces as they are decided, and a client that goes away does not stop the run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from asd_se.core.annotations import read_csv


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def _read(browser, expression: str):
    """One value read from the page in a single script turn: the page re-renders its table and counters as decisions
    arrive, so an element found in one call may be gone by the next."""
    return browser.execute_script(f"return {expression}")


@pytest.fixture
def served(synth_root, checkpoint, tmp_path):
    """``asd-se live`` on the synthetic val video at its own pace, serving its page; yields (url, process, jsonl)."""
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    port, jsonl = _free_port(), tmp_path / "live.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "asd_se", "live", str(synth_root / "videos" /
                                f"{rows[0].video_id}.mp4"), "--checkpoint", str(checkpoint), "--realtime",
                                "--serve", str(port), "--jsonl", str(jsonl)], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        try:
            return urllib.request.urlopen(url, timeout=1).status == 200
        except OSError:
            return False

    _wait_until(up, 120, f"{url} serving")
    yield url, process, jsonl
    process.kill()
    process.wait()


def test_the_served_page_shows_the_stream_and_its_decisions(browser, served):
    url, process, jsonl = served
    browser.get(url)
    _wait_until(lambda: browser.execute_script(
        "const i = document.getElementById('video'); return i.complete && i.naturalWidth > 0"), 30, "a frame")
    track = _wait_until(lambda: _read(browser, "document.querySelector('#faces tr')?.dataset.track"), 30,
                        "a face in the table")
    assert track is not None
    first = int(_read(browser, "document.getElementById('count').textContent"))
    _wait_until(lambda: int(_read(browser, "document.getElementById('count').textContent")) > first, 10,
                "more decisions")
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    _wait_until(lambda: "ended" in _read(browser, "document.getElementById('status').textContent"), 10,
                "the page saying it ended")
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert lines[0]["serve"] == url and lines[-1]["event"] == "end"


def test_a_client_that_goes_away_does_not_stop_the_run(served):
    url, process, jsonl = served
    for path in ("video.mjpg", "events"):
        with urllib.request.urlopen(url + path, timeout=30) as stream:  # as the page test: the model loads first
            assert stream.read(2000)  # some of the stream, then the client is gone
    time.sleep(1.0)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "a client went away" in stderr
    assert json.loads(jsonl.read_text().splitlines()[-1])["reason"] == "end of stream"
