"""One file over HTTP(S), resumably (``requests``): a ``.part`` file is continued with a range request, the
size is checked against what the server announced, the file appears atomically, and dropped connections,
timeouts and 5xx answers are retried with exponential backoff. A 404 is final."""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from asd_se.core.errors import FetchError


class _Transient(Exception):
    """A failure worth another try (the connection, a timeout, the server's 5xx)."""


@dataclass(frozen=True)
class FetchSettings:
    """How hard to try."""

    retries: int = 5  # further tries after the first, each resuming where the last stopped
    backoff_s: float = 2.0  # wait before the first retry; doubled after each
    timeout_s: float = 60.0  # connect / between bytes
    chunk_bytes: int = 1 << 20


def part_path(dest: Path) -> Path:
    """Where a file grows until it is complete."""
    return dest.with_name(dest.name + ".part")


def remote_size(session: requests.Session, url: str, settings: FetchSettings) -> int | None:
    """The size the server announces for ``url`` (HEAD), or None where it announces none."""
    for attempt in range(settings.retries + 1):
        try:
            response = session.head(url, allow_redirects=True, timeout=settings.timeout_s)
            if response.status_code == 404:
                raise FetchError(f"{url}: not found (HTTP 404)")
            if response.status_code >= 500:
                raise _Transient(f"HTTP {response.status_code}")
            length = response.headers.get("Content-Length")
            if not response.ok or length is None:
                return None
            if not length.strip().isdigit():
                raise FetchError(f"{url}: the server announced a size that is not a number "
                                 f"(Content-Length: {length!r})")
            return int(length)
        except (requests.ConnectionError, requests.Timeout, _Transient) as err:
            if attempt == settings.retries:
                raise FetchError(f"{url}: no answer after {attempt + 1} tries ({err})") from err
            time.sleep(settings.backoff_s * 2 ** attempt)
    return None


def fetch(session: requests.Session, url: str, dest: Path, settings: FetchSettings = FetchSettings(),
          expected: int | None = None, progress: Callable[[int], None] | None = None) -> int:
    """Download ``url`` to ``dest``; returns its size. A file already at ``dest`` is kept as it is. ``expected``
    (bytes; default: what HEAD announces) must match, else nothing is kept. Raises FetchError."""
    dest = Path(dest)
    if dest.exists():
        return dest.stat().st_size
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FetchError(f"{dest.parent}: cannot create the folder ({err.strerror or err})") from err
    expected = expected if expected is not None else remote_size(session, url, settings)
    part = part_path(dest)
    for attempt in range(settings.retries + 1):
        try:
            _transfer(session, url, part, expected, settings, progress or (lambda n: None))
            break
        except _Transient as err:
            if attempt == settings.retries:
                raise FetchError(f"{url}: gave up after {attempt + 1} tries ({err}); {part} is kept and a rerun "
                                 f"resumes it") from err
            time.sleep(settings.backoff_s * 2 ** attempt)
    size = part.stat().st_size
    if expected is not None and size != expected:
        part.unlink()
        raise FetchError(f"{url}: size mismatch: received {size} bytes, the server announced {expected}; "
                         f"not kept")
    os.replace(part, dest)
    return size


def _transfer(session: requests.Session, url: str, part: Path, expected: int | None, settings: FetchSettings,
              progress: Callable[[int], None]) -> None:
    """Append to ``part`` from where it ends; raises _Transient for what a retry may fix."""
    have = part.stat().st_size if part.exists() else 0
    if expected is not None and have >= expected:
        if have > expected:
            part.unlink()  # longer than the file: start again
            raise _Transient(f"{part} was longer than the file")
        return
    try:
        headers = {"Range": f"bytes={have}-"} if have else {}
        with session.get(url, headers=headers, stream=True, timeout=settings.timeout_s) as response:
            if response.status_code == 404:
                raise FetchError(f"{url}: not found (HTTP 404)")
            if response.status_code == 429 or response.status_code >= 500:
                raise _Transient(f"HTTP {response.status_code}")
            if response.status_code not in (200, 206):
                raise FetchError(f"{url}: HTTP {response.status_code}")
            resumed = response.status_code == 206 and response.headers.get("Content-Range", "").startswith(
                f"bytes {have}-")
            with open(part, "ab" if resumed else "wb") as handle:  # 200: the server sends it all again
                for chunk in response.iter_content(settings.chunk_bytes):
                    handle.write(chunk)
                    progress(len(chunk))
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
        raise _Transient(f"connection lost at {part.stat().st_size if part.exists() else 0} bytes") from err
    except requests.RequestException as err:  # before OSError, which it subclasses
        raise FetchError(f"{url}: {err}") from err
    except OSError as err:
        full = " (the disk is full)" if err.errno == errno.ENOSPC else ""
        raise FetchError(f"{part}: cannot write ({err.strerror or err}){full}") from err
    size = part.stat().st_size
    if expected is not None and size < expected:
        raise _Transient(f"connection closed at {size} of {expected} bytes")
