"""``asd-se download ava``: AVA-ActiveSpeaker's annotations and movies, laid out as ``asd-se prep --dataset ava
--root ROOT`` reads them::

    ROOT/csv/ava_activespeaker_{train,val}_v1.0.csv   the per-movie CSVs of each split's archive, joined
    ROOT/videos/<video_id>.{mkv,mp4,webm}             the movies, named as the AVA file list names them
    ROOT/downloads/                                   the archives and the file list, as fetched

Every file is fetched resumably (``fetch.py``); a rerun fetches only what is missing. ``--dry-run`` writes
nothing: it reads the annotations and the list, asks the server for each movie's size, and prints the plan.
"""

from __future__ import annotations

import csv
import io
import logging
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from asd_se.core.errors import EXIT_OK, EXIT_SKIPPED, FetchError
from asd_se.core.fsio import atomic_path
from asd_se.core.progress import Progress
from data_prep.fetch import FetchSettings, fetch, remote_size

log = logging.getLogger(__name__)

SPLITS = ("train", "val")


@dataclass(frozen=True)
class AvaSources:
    """Where AVA's files live (research.google.com/ava/download.html; the CVDF mirror on S3)."""

    annotations: str = "https://research.google.com/ava/download/ava_activespeaker_{split}_v1.0.tar.bz2"
    file_list: str = "https://s3.amazonaws.com/ava-dataset/annotations/ava_file_names_trainval_v2.1.txt"
    movies: str = "https://s3.amazonaws.com/ava-dataset/trainval/{name}"

    @classmethod
    def mirror(cls, base: str) -> "AvaSources":
        """The same files under one base URL: ``BASE/<archive>``, ``BASE/<file list>``, ``BASE/trainval/<movie>``."""
        base = base.rstrip("/")
        return cls(f"{base}/ava_activespeaker_{{split}}_v1.0.tar.bz2", f"{base}/ava_file_names_trainval_v2.1.txt",
                   f"{base}/trainval/{{name}}")


@dataclass(frozen=True)
class DownloadConfig:
    """What ``asd-se download ava`` was asked to do."""

    root: Path
    splits: tuple[str, ...] = SPLITS
    workers: int = 4  # movies fetched at once
    dry_run: bool = False
    sources: AvaSources = field(default_factory=AvaSources)
    fetch: FetchSettings = field(default_factory=FetchSettings)


@dataclass
class DownloadReport:
    """What was fetched, what was already there, and what failed (by URL, with the reason)."""

    movies: int = 0
    fetched: int = 0
    present: int = 0
    bytes_fetched: int = 0
    bytes_planned: int = 0
    failed: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.failed else EXIT_OK

    def render(self) -> str:
        if self.dry_run:
            lines = [f"dry run: {self.movies} movies, {self.present} already here, "
                     f"{self.movies - self.present} to fetch ({self.bytes_planned / 1e9:.1f} GB); nothing written"]
        else:
            lines = [f"movies: {self.present + self.fetched}/{self.movies} here ({self.fetched} fetched now, "
                     f"{self.bytes_fetched / 1e9:.2f} GB)"]
        if self.failed:
            lines.append(f"{len(self.failed)} file(s) failed (a rerun retries them):")
            lines.extend(f"  {f}" for f in self.failed)
        return "\n".join(lines)


def split_csv(root: Path, split: str) -> Path:
    """Where a split's joined annotations live (the name carries the split, which prep reads from it)."""
    return Path(root) / "csv" / f"ava_activespeaker_{split}_v1.0.csv"


def _joined_csv(archive: bytes, source: str) -> bytes:
    """The CSV members of a ``.tar.bz2`` archive, in name order, as one CSV (members are read, never
    extracted: no path in an archive can write anywhere)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:bz2") as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".csv")),
                             key=lambda m: m.name)
            parts = [tar.extractfile(m).read() for m in members]
    except (tarfile.TarError, EOFError, OSError) as err:
        raise FetchError(f"{source}: not a readable .tar.bz2 archive ({err})") from err
    if not parts:
        raise FetchError(f"{source}: the archive holds no CSV file")
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)


def _small_file(session: requests.Session, url: str, dest: Path, config: DownloadConfig) -> bytes:
    """An annotation archive or the file list: fetched to ``dest`` (in memory only on a dry run)."""
    if config.dry_run and not dest.exists():
        try:
            response = session.get(url, timeout=config.fetch.timeout_s)
        except requests.RequestException as err:
            raise FetchError(f"{url}: {err}") from err
        if not response.ok:
            raise FetchError(f"{url}: HTTP {response.status_code}")
        return response.content
    fetch(session, url, dest, config.fetch)
    return dest.read_bytes()


def _movie_names(listing: bytes) -> dict[str, str]:
    """``{video_id: file name}`` from the AVA file list (one name per line)."""
    names = (line.strip() for line in listing.decode("utf-8", "replace").splitlines())
    return {Path(name).stem: name for name in names if name and "/" not in name and not name.startswith(".")}


def download_ava(config: DownloadConfig) -> DownloadReport:
    """Fetch the annotations of ``config.splits``, the file list and the movies they name."""
    root = Path(config.root)
    report = DownloadReport(dry_run=config.dry_run)
    with requests.Session() as session:
        wanted: dict[str, None] = {}
        for split in config.splits:
            url = config.sources.annotations.format(split=split)
            archive = _small_file(session, url, root / "downloads" / url.rsplit("/", 1)[-1], config)
            joined = _joined_csv(archive, url)
            if not config.dry_run:
                with atomic_path(split_csv(root, split)) as tmp:
                    tmp.write_bytes(joined)
            for row in csv.reader(io.StringIO(joined.decode("utf-8", "replace"))):
                if row and not row[0].startswith("video_id"):
                    wanted.setdefault(row[0])
        names = _movie_names(_small_file(session, config.sources.file_list,
                                         root / "downloads" / config.sources.file_list.rsplit("/", 1)[-1], config))
        jobs = []
        for video_id in wanted:
            if video_id not in names:
                report.failed.append(f"{video_id}: not in the AVA file list {config.sources.file_list}")
                continue
            jobs.append((config.sources.movies.format(name=names[video_id]), root / "videos" / names[video_id]))
        report.movies = len(wanted)
        present = [dest for _, dest in jobs if dest.exists()]
        report.present = len(present)
        missing = [(url, dest) for url, dest in jobs if not dest.exists()]
        sizes = _sizes(session, missing, config, report)
        report.bytes_planned = sum(size for size in sizes.values() if size)
        if config.dry_run:
            return report
        _fetch_movies(missing, sizes, config, report)
    return report


def _sizes(session: requests.Session, jobs: list[tuple[str, Path]], config: DownloadConfig,
           report: DownloadReport) -> dict[str, int | None]:
    """Each movie's announced size (HEAD, in parallel); a movie that cannot be found is reported and dropped."""
    def ask(url: str) -> tuple[str, int | None | FetchError]:
        try:
            return url, remote_size(session, url, config.fetch)
        except FetchError as err:
            return url, err

    sizes = {}
    with ThreadPoolExecutor(max(1, config.workers)) as pool:
        for url, size in pool.map(ask, [url for url, _ in jobs]):
            if isinstance(size, FetchError):
                report.failed.append(str(size))
            else:
                sizes[url] = size
    return sizes


def _fetch_movies(jobs: list[tuple[str, Path]], sizes: dict[str, int | None], config: DownloadConfig,
                  report: DownloadReport) -> None:
    """Fetch the movies, ``config.workers`` at a time: one progress bar per file and one overall."""
    jobs = [(url, dest) for url, dest in jobs if url in sizes]
    with Progress("AVA movies", "B", sum(s or 0 for s in sizes.values()) or None) as overall:
        def one(job: tuple[str, Path]) -> tuple[int, str | None]:
            url, dest = job
            with Progress(dest.name, "B", sizes[url]) as bar:
                def advance(count: int) -> None:
                    bar.update(count)
                    overall.update(count)
                try:
                    with requests.Session() as session:  # one per thread: sessions are not thread-safe
                        return fetch(session, url, dest, config.fetch, sizes[url], advance), None
                except FetchError as err:
                    return 0, str(err)

        with ThreadPoolExecutor(max(1, config.workers)) as pool:
            for size, error in pool.map(one, jobs):
                if error is None:
                    report.fetched += 1
                    report.bytes_fetched += size
                else:
                    report.failed.append(error)
