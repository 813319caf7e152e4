"""Safe file writing: atomic replacement and data-derived names that cannot escape their folder."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TextIO

from asd_se.core.errors import InputError, OutputError

_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-:.+]+$")


def is_safe_id(text: str) -> bool:
    """True for ids as AVA/WASD spell them (letters, digits, ``_-:.+``), false for anything path-like.

    Rejects ``/``, ``\\``, ``..``, a leading ``.``, whitespace and control characters.
    """
    return bool(_SAFE_ID.match(text)) and ".." not in text and not text.startswith(".")


def safe_stem(identifier: str) -> str:
    """A file stem for a (validated) id: ``:`` and ``+`` become ``_``-escapes so the name is portable."""
    if not is_safe_id(identifier):
        raise ValueError(f"unsafe identifier {identifier!r}")
    return identifier.replace("_", "__").replace(":", "_c").replace("+", "_p")


def inside(folder: Path, name: str) -> Path:
    """``folder / name``, refusing any result that would lie outside ``folder``."""
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise ValueError(f"{name!r} would be written outside {folder}")
    return path


def not_a_file(path: Path, what: str = "file") -> str:
    """Why ``path`` is no regular file to read: missing, or what it is instead (a FIFO, a device: inputs are
    read more than once, from a regular file)."""
    if not path.exists():
        return f"no such {what}"
    kind = ("a folder" if path.is_dir() else "a FIFO (named pipe)" if path.is_fifo() else
            "a device" if path.is_char_device() or path.is_block_device() else "a socket" if path.is_socket()
            else "not a regular file")
    return (f"is {kind}, not a regular {what} (asd-se reads it more than once: save it to a file first; asd-se "
            f"live - reads a stream on standard input)")


def require_folder(path: Path, what: str = "folder") -> Path:
    """``path`` if it is an existing folder; else InputError saying whether it is missing or a file."""
    path = Path(path)
    if path.is_file():
        raise InputError(f"{path}: is a file, not a {what}")
    if not path.is_dir():
        raise InputError(f"{path}: no such {what}")
    return path


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same absolute path, or (both existing) the same inode."""
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _within(path: Path, folder: Path) -> bool:
    return folder.is_dir() and (folder in path.parents or any(_same(p, folder) for p in path.parents))


def check_outputs(reads: Iterable[Path | None], files: Iterable[Path | None] = (),
                  folders: Iterable[Path | None] = ()) -> None:
    """The one guard every command runs before any work: OutputError unless each file and folder it writes is
    distinct from every path it ``reads`` (not the same name or inode, not inside a folder it reads), no file is
    written twice in the run, and each can be written (``check_writable``). ``None`` entries are ignored."""
    read_paths = [Path(os.path.abspath(p)) for p in reads if p is not None]
    written: list[Path] = []
    for given, is_folder in [(Path(p), False) for p in files if p is not None] + \
                            [(Path(p), True) for p in folders if p is not None]:
        path = Path(os.path.abspath(given))
        for source in read_paths:
            if _same(path, source) or _within(path, source):
                raise OutputError(f"{given}: is an input of this command ({source}); asd-se never writes over "
                                  f"its inputs — choose another output")
        for other in written:
            if _same(path, other):
                raise OutputError(f"{given}: this command would write it twice (two of its outputs are one "
                                  f"file); choose another output")
        written.append(path)
        check_writable(given, folder=is_folder)


def check_writable(target: Path, folder: bool = False) -> None:
    """OutputError naming ``target`` unless it can be written: a file output is not a folder (a folder output
    not a file), the folders above it are folders (or can be made), and the first existing one accepts a new
    file (tried with a temporary file, removed at once: permission bits mean nothing to root, a read-only
    filesystem does)."""
    target = Path(target)
    if target.is_dir() != folder and target.exists():
        raise OutputError(f"{target}: is {'a file' if folder else 'a folder'}; give a "
                          f"{'folder' if folder else 'file name'}")
    place = target if folder else target.parent
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        raise OutputError(f"{target}: cannot be created, {place} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=place):
            pass
    except OSError as err:
        raise OutputError(f"{target}: cannot be written in {place} ({err.strerror or err})") from None


WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                errno.EISDIR, errno.EEXIST}


@contextlib.contextmanager
def write_errors(target: Path, scratch: Path) -> Iterator[None]:
    """Turn an operating-system error met while writing ``scratch`` (the temporary file or folder of
    ``target``) into the OutputError naming ``target``; errors about other files (an input read meanwhile)
    pass unchanged."""
    try:
        yield
    except OSError as err:
        named = Path(os.path.abspath(err.filename)) if isinstance(err.filename, str) else None
        scratch = Path(os.path.abspath(scratch))
        ours = named is None or named == scratch or scratch in named.parents
        if not ours or err.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(f"{target}: cannot be written ({err.strerror or err}); nothing was left there") from err


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs; one that arrived meanwhile is handled as it ends. Python
    runs a handler between any two steps, so without this one could land after a temporary file is made and
    before its name is kept for removal."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    On any exception (Ctrl-C included) the temporary file is removed and ``target`` is untouched; an
    operating-system write error (a full or read-only disk) becomes the OutputError naming ``target``.
    The temporary name keeps ``target``'s suffix so writers that infer a format from it still work.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        with _signals_held(), write_errors(target, target.parent):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}",
                                            dir=target.parent)
            os.close(fd)
            tmp = Path(tmp_name)
        with write_errors(target, tmp):
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared like any other file
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def refuse_overwrite(path: Path, force: bool) -> None:
    """InputError if ``path`` exists and ``force`` is not given (outputs never replace a file silently)."""
    if Path(path).exists() and not force:
        raise InputError(f"{path}: exists; give --force to replace it, or choose another output")


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path, payload: object) -> None:
    """Write ``payload`` as pretty JSON to ``target`` atomically. Strict JSON: a NaN or infinity raises
    ValueError instead of writing a file no JSON reader accepts."""
    write_text_atomic(target, json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n")


def write_csv_atomic(target: Path, rows: Iterable[Sequence[object]]) -> None:
    """Write ``rows`` as headerless CSV to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)


STAGING_PREFIX = ".staging-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(folder: Path) -> int:
    """Remove the staging folders in ``folder`` whose process is gone (a run killed mid-way); returns how many."""
    removed = 0
    for path in Path(folder).glob(f"{STAGING_PREFIX}*"):
        pid = path.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


@contextlib.contextmanager
def staged_outputs(folder: Path) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder``; once the block succeeds, every file in it moves into
    ``folder`` (each by one rename). On any exception nothing moves and the staging folder is removed, so a
    set of outputs appears together or not at all. The folder's name carries the process id, so a run killed
    before it could clean up is cleaned by the next one (``remove_stale_staging``)."""
    folder = Path(folder)
    remove_stale_staging(folder)
    with write_errors(folder, folder):
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
    try:
        with write_errors(folder, staging):
            yield staging
        for path in sorted(staging.iterdir()):
            if not path.name.startswith("."):
                os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def standard_output() -> TextIO:
    """``sys.stdout``, where a command's result is written there; OutputError where it is closed (``>&-``)."""
    if sys.stdout is None:
        raise OutputError("standard output: is closed; give the command an output file, or leave standard output "
                          "open")
    return sys.stdout


def _quiet_stdout() -> None:
    """Standard output's reader went away: send what Python still flushes at exit nowhere, so it does not report
    the broken pipe a second time."""
    if sys.stdout is not None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@contextlib.contextmanager
def stream_errors(name: str, stream: TextIO | None = None) -> Iterator[None]:
    """An OSError while writing the stream ``name`` (standard output, a JSON-lines journal) -> the OutputError
    naming it: a reader that went away (``| head -1``) said so, a full device (``/dev/full``) with its reason."""
    try:
        yield
    except BrokenPipeError as err:
        if stream is sys.stdout:
            _quiet_stdout()
        raise OutputError(f"{name}: its reader closed it (broken pipe); nothing more was written") from err
    except OSError as err:
        raise OutputError(f"{name}: cannot be written ({err.strerror or err})") from err
