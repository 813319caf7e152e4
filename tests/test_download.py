"""``asd-se download ava`` against an HTTP server on 127.0.0.1 serving synthetic AVA files, with faults:
a connection dropped mid-file, a 404, a size that does not match, a disk that is full, a folder that cannot be
made. Nothing reaches any other address."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from asd_se.cli import main
from asd_se.core.errors import FetchError
from data_prep.ava_download import AvaSources, DownloadConfig, download_ava, split_csv
from data_prep.fetch import FetchSettings, fetch, part_path

FAST = FetchSettings(retries=3, backoff_s=0.01, timeout_s=5.0, chunk_bytes=4096)


@dataclass
class Files:
    """What the server holds, which faults it plays, and what it was asked."""

    content: dict[str, bytes] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)  # first GET: half the body, then the connection closes
    announce: dict[str, int | str] = field(default_factory=dict)  # HEAD lies about the size (or garbles it)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(files: Files):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _start(self, method: str) -> bytes | None:
            with files.lock:
                files.requests.append((method, self.path, self.headers.get("Range", "")))
            body = files.content.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
            return body

        def do_HEAD(self):
            body = self._start("HEAD")
            if body is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(files.announce.get(self.path, len(body))))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

        def do_GET(self):
            body = self._start("GET")
            if body is None:
                return
            first = int(self.headers["Range"].split("=")[1].split("-")[0]) if "Range" in self.headers else 0
            self.send_response(206 if first else 200)
            if first:
                self.send_header("Content-Range", f"bytes {first}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - first))
            self.end_headers()
            with files.lock:
                drop = self.path in files.drop_once
                files.drop_once.discard(self.path)
            if drop:
                self.wfile.write(body[first:first + (len(body) - first) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            try:
                self.wfile.write(body[first:])
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a test's fault): fine
                pass

    return Handler


@pytest.fixture
def server():
    files = Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield files, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _archive(split: str, rows: dict[str, list[str]]) -> bytes:
    """An ``ava_activespeaker_<split>_v1.0.tar.bz2`` of one CSV per movie, as AVA ships them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
        for video_id, lines in rows.items():
            data = "".join(f"{line}\n" for line in lines).encode()
            info = tarfile.TarInfo(f"ava_activespeaker_{split}_v1.0/{video_id}-activespeaker.csv")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _serve_synthetic_ava(files: Files, synth_root: Path) -> dict[str, bytes]:
    """The synthetic set served as AVA is: an archive per split, the file list, the movies under trainval/."""
    movies = {}
    for split in ("train", "val"):
        by_video = defaultdict(list)
        for line in (synth_root / "annotations" / f"{split}.csv").read_text().splitlines():
            by_video[line.split(",")[0]].append(line)
        files.content[f"/ava_activespeaker_{split}_v1.0.tar.bz2"] = _archive(split, by_video)
    for video in sorted((synth_root / "videos").glob("*.mp4")):
        movies[video.name] = video.read_bytes()
        files.content[f"/trainval/{video.name}"] = movies[video.name]
    files.content["/ava_file_names_trainval_v2.1.txt"] = "".join(f"{n}\n" for n in movies).encode()
    return movies


def test_download_lays_out_what_prep_reads_and_a_dropped_connection_resumes(server, synth_root, tmp_path, capsys):
    files, url = server
    movies = _serve_synthetic_ava(files, synth_root)
    dropped = sorted(movies)[0]
    files.drop_once.add(f"/trainval/{dropped}")
    report = download_ava(DownloadConfig(tmp_path, workers=2, sources=AvaSources.mirror(url), fetch=FAST))
    assert report.exit_code == 0, report.render()
    assert report.fetched == 3 and report.movies == 3
    for name, data in movies.items():
        assert (tmp_path / "videos" / name).read_bytes() == data
    assert not list(tmp_path.rglob("*.part"))
    gets = [r for r in files.requests if r[:2] == ("GET", f"/trainval/{dropped}")]
    assert len(gets) == 2 and gets[0][2] == ""
    resumed_at = int(gets[1][2].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(movies[dropped]) // 2  # resumed from what had arrived, not restarted
    assert split_csv(tmp_path, "val").read_text() == (synth_root / "annotations" / "val.csv").read_text()
    code = main(["prep", "--check", "--dataset", "ava", "--root", str(tmp_path)])
    assert code == 0, capsys.readouterr().out


def test_an_interrupted_run_is_resumed_by_the_rerun_not_restarted(server, synth_root, tmp_path, capsys):
    files, url = server
    movies = _serve_synthetic_ava(files, synth_root)
    name = sorted(movies)[1]
    files.drop_once.add(f"/trainval/{name}")
    no_retries = FetchSettings(retries=0, backoff_s=0.0, timeout_s=5.0, chunk_bytes=4096)
    first = download_ava(DownloadConfig(tmp_path, sources=AvaSources.mirror(url), fetch=no_retries))
    assert first.exit_code == 3 and any(name in f and "a rerun resumes" in f for f in first.failed)
    partial = part_path(tmp_path / "videos" / name)
    kept = partial.stat().st_size
    assert 0 < kept <= len(movies[name]) // 2 and not (tmp_path / "videos" / name).exists()
    files.requests.clear()
    code = main(["download", "ava", "--root", str(tmp_path), "--mirror", url, "--workers", "1"])
    assert code == 0, capsys.readouterr().out
    assert (tmp_path / "videos" / name).read_bytes() == movies[name]
    gets = [r for r in files.requests if r[0] == "GET" and r[1].startswith("/trainval/")]
    assert gets == [("GET", f"/trainval/{name}", f"bytes={kept}-")]  # resumed; nothing else refetched


def test_a_404_is_reported_and_the_rest_fetched(server, synth_root, tmp_path, capsys):
    files, url = server
    movies = _serve_synthetic_ava(files, synth_root)
    gone = sorted(movies)[2]
    del files.content[f"/trainval/{gone}"]
    code = main(["download", "ava", "--root", str(tmp_path), "--mirror", url])
    out = capsys.readouterr().out
    assert code == 3
    assert f"{url}/trainval/{gone}: not found (HTTP 404)" in out
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == sorted(set(movies) - {gone})


def test_a_size_mismatch_is_not_kept(server, synth_root, tmp_path):
    files, url = server
    movies = _serve_synthetic_ava(files, synth_root)
    name = sorted(movies)[0]
    files.announce[f"/trainval/{name}"] = len(movies[name]) - 100  # the server's HEAD and GET disagree
    report = download_ava(DownloadConfig(tmp_path, sources=AvaSources.mirror(url), fetch=FAST))
    assert report.exit_code == 3
    assert any("size mismatch" in f and name in f and "not kept" in f for f in report.failed), report.failed
    assert not (tmp_path / "videos" / name).exists() and not part_path(tmp_path / "videos" / name).exists()


def test_a_size_that_is_not_a_number_is_a_clear_error(server, tmp_path):
    files, url = server
    files.content["/movie.mkv"] = b"x" * 1000
    files.announce["/movie.mkv"] = "abc"
    dest = tmp_path / "movie.mkv"
    with requests.Session() as session, pytest.raises(FetchError, match=r"movie.mkv: the server announced a size "
                                                                         r"that is not a number \(Content-Length: "
                                                                         r"'abc'\)"):
        fetch(session, f"{url}/movie.mkv", dest, FAST)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_and_an_unmakeable_folder_are_clear_errors(server, tmp_path):
    files, url = server
    files.content["/movie.mkv"] = b"x" * 10_000
    dest = tmp_path / "videos" / "movie.mkv"
    dest.parent.mkdir()
    os.symlink("/dev/full", part_path(dest))  # every write: ENOSPC, as on a full disk
    full = r"movie.mkv.part: cannot write .*disk is full"
    with requests.Session() as session, pytest.raises(FetchError, match=full):
        fetch(session, f"{url}/movie.mkv", dest, FAST)
    assert not dest.exists()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    not_a_folder = r"blocked/videos: cannot create the folder \(Not a directory\)"
    with requests.Session() as session, pytest.raises(FetchError, match=not_a_folder):
        fetch(session, f"{url}/movie.mkv", blocked / "videos" / "movie.mkv", FAST)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_a_folder_without_write_permission_is_a_clear_error(server, tmp_path):
    files, url = server
    files.content["/movie.mkv"] = b"x" * 1000
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with requests.Session() as session, pytest.raises(FetchError, match="cannot write .*Permission denied"):
        fetch(session, f"{url}/movie.mkv", locked / "movie.mkv", FAST)


def test_dry_run_writes_nothing_and_states_the_plan(server, synth_root, tmp_path, capsys):
    files, url = server
    movies = _serve_synthetic_ava(files, synth_root)
    code = main(["download", "ava", "--root", str(tmp_path / "root"), "--mirror", url, "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "dry run: 3 movies, 0 already here, 3 to fetch" in out
    assert not (tmp_path / "root").exists()
    assert not [r for r in files.requests if r[0] == "GET" and r[1].startswith("/trainval/")]
    assert sum(1 for r in files.requests if r[0] == "HEAD" and r[1].startswith("/trainval/")) == len(movies)


def test_a_movie_missing_from_the_file_list_is_reported(server, synth_root, tmp_path):
    files, url = server
    movies = _serve_synthetic_ava(files, synth_root)
    files.content["/ava_file_names_trainval_v2.1.txt"] = "".join(f"{n}\n" for n in sorted(movies)[1:]).encode()
    report = download_ava(DownloadConfig(tmp_path, sources=AvaSources.mirror(url), fetch=FAST))
    assert report.exit_code == 3 and report.fetched == 2
    assert any(Path(sorted(movies)[0]).stem in f and "not in the AVA file list" in f for f in report.failed)
