"""Safe file writing: atomic replacement and data-derived names that cannot escape their folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from asd_se.core.errors import InputError

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


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    On any exception (Ctrl-C included) the temporary file is removed and ``target`` is untouched.
    The temporary name keeps ``target``'s suffix so writers that infer a format from it still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared like any other file
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
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
    """Write ``payload`` as pretty JSON to ``target`` atomically."""
    write_text_atomic(target, json.dumps(payload, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def staged_outputs(folder: Path) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder``; once the block succeeds, every file in it moves into
    ``folder`` (each by one rename). On any exception nothing moves and the staging folder is removed, so a
    set of outputs appears together or not at all."""
    folder = Path(folder)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        yield staging
        for path in sorted(staging.iterdir()):
            if not path.name.startswith("."):
                os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
