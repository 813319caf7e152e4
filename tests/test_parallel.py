"""``parallel_map`` under a signal: Ctrl-C (or SIGTERM) to the whole process group or to the main process alone
ends the run within seconds, starts no job after it, leaves no temporary file and no worker behind; and the
command line ends at SIGTERM as at Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from asd_se.core.parallel import parallel_map

_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from asd_se.core.errors import EXIT_TERMINATED
    from asd_se.core.fsio import atomic_path
    from asd_se.core.parallel import parallel_map
    from asd_se.core.signals import Terminated, sigterm_raises

    def job(index):
        out = Path(sys.argv[1])
        (out / f"{index}.started").write_text(repr(time.time()))
        with atomic_path(out / f"{index}.done") as tmp:
            tmp.write_text("half")
            time.sleep(1.0)
        return index

    if __name__ == "__main__":
        recycle = None if sys.argv[2] == "none" else int(sys.argv[2])
        try:
            with sigterm_raises():  # as the asd-se command line runs every command
                for index in parallel_map(job, range(60), 2, recycle=recycle):
                    print(index, flush=True)
        except KeyboardInterrupt:
            sys.exit(130)
        except Terminated:
            sys.exit(EXIT_TERMINATED)
""")


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses pgrep")
@pytest.mark.parametrize("recycle", [None, 2], ids=["pool", "recycled"])
@pytest.mark.parametrize("name,group", [("SIGINT", True), ("SIGINT", False), ("SIGTERM", True),
                                        ("SIGTERM", False)])
def test_a_signal_ends_the_workers_at_once_and_leaves_nothing(tmp_path, recycle, name, group):
    script, out = tmp_path / "run.py", tmp_path / "out"
    script.write_text(_SCRIPT)
    out.mkdir()
    # SIGINT at its default even where the suite itself runs with it ignored (a background job of a script)
    process = subprocess.Popen([sys.executable, str(script), str(out), str(recycle or "none")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (out / "1.done").exists():  # both workers have run a job: the pool is in full flow
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        workers = _children(process.pid)
        signalled = time.time()
        (os.killpg if group else os.kill)(process.pid, getattr(signal, name))
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == {"SIGINT": 130, "SIGTERM": 143}[name], stderr
    time.sleep(3.0)  # a worker left to itself has finished its job by now
    assert [pid for pid in workers if _alive(pid)] == [], "workers outlived the run"
    late = [path.name for path in out.glob("*.started") if float(path.read_text()) > signalled + 0.5]
    assert late == [], f"jobs started after the signal: {late}"
    assert not [path.name for path in out.iterdir() if ".part" in path.name], "a temporary file was left"
    assert "Process SpawnPoolWorker" not in stderr, "a worker printed a traceback"


_TWICE = textwrap.dedent("""
    import os, pathlib, signal, sys
    from asd_se.core.fsio import atomic_path
    from asd_se.core.parallel import _worker_start

    removing = pathlib.Path.unlink

    def unlink_under_a_second_signal(self, missing_ok=False):  # the pool's terminate, landing mid-cleanup
        os.kill(os.getpid(), signal.SIGTERM)
        removing(self, missing_ok=missing_ok)

    _worker_start()
    pathlib.Path.unlink = unlink_under_a_second_signal
    with atomic_path(pathlib.Path(sys.argv[1]) / "result.json") as tmp:
        tmp.write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)  # the group's signal
""")


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")
def test_a_second_signal_does_not_cut_a_workers_cleanup_short(tmp_path):
    script, out = tmp_path / "twice.py", tmp_path / "out"
    script.write_text(_TWICE)
    out.mkdir()
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143, done.stderr
    assert list(out.iterdir()) == [], "a temporary file was left"


def test_inline_and_pooled_runs_give_the_same_results_in_order():
    assert list(parallel_map(abs, range(-5, 5), 1)) == list(parallel_map(abs, range(-5, 5), 2)) \
        == list(parallel_map(abs, range(-5, 5), 2, recycle=1)) == [abs(i) for i in range(-5, 5)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses pgrep")
def test_the_command_line_ends_at_sigterm_as_at_ctrl_c(tmp_path):
    out = tmp_path / "synth"
    process = subprocess.Popen([sys.executable, "-m", "asd_se", "synth", str(out), "--videos", "12", "--minutes",
                                "0.3", "--workers", "2", "--seed", "3"], stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "videos").glob("*.mp4")):  # a first video done: the workers are on the next ones
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        workers = _children(process.pid)
        process.send_signal(signal.SIGTERM)  # the main process alone, as `kill PID` does
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 143, stderr
    assert "asd-se synth: terminated; nothing partial was left" in stderr
    assert "Traceback" not in stderr
    time.sleep(1.0)
    assert [pid for pid in workers if _alive(pid)] == []
    assert not [path.name for path in out.rglob("*") if ".part" in path.name]
    assert not (out / "annotations").exists()  # the CSVs come once every video is there
