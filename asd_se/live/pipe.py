"""A stream on standard input (``asd-se live -``): read with a deadline, and opened the way its format allows.

Most streams (MPEG-TS, Matroska, a fragmented or fast-start MP4) are decoded as they arrive. An MP4 whose index
(``moov``) comes after its media (``mdat``) — what most encoders write — cannot be: no frame is decodable
before its end. Such a stream is read whole into an unlinked temporary file first, then decoded from there as a
file, as fast as it decodes (``cat clip.mp4 | asd-se live -``), and a note says so.
"""

from __future__ import annotations

import os
import select
import shutil
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO

from asd_se.core.errors import Stalled
from asd_se.core.signals import POLL_S

HEAD_LIMIT = 16 << 20  # bytes of leading MP4 boxes kept while looking for the index or the media


class TimedPipe:
    """A pipe read with a deadline: ``read`` raises ``Stalled`` when nothing came for ``stall_s`` (PyAV passes
    it up from inside FFmpeg), so neither opening nor reading a stream on stdin can hang; once ``stop`` is set it
    reads as the end of the stream (within ``POLL_S``). Bytes given to ``unread`` are read again first."""

    def __init__(self, fd: int, stall_s: float, spec: str, stop: threading.Event):
        self.fd, self.stall_s, self.spec, self.stop = fd, stall_s, spec, stop
        self._head = b""

    def read(self, size: int) -> bytes:
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        deadline = time.monotonic() + self.stall_s
        while not self.stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], min(POLL_S, self.stall_s))
            if ready:
                return os.read(self.fd, size)
            if time.monotonic() >= deadline:
                raise Stalled(f"{self.spec}: no data for {self.stall_s:g} s (the source stalled)")
        return b""

    def read_exactly(self, size: int) -> bytes:
        """``size`` bytes, or fewer where the stream ends first."""
        parts, left = [], size
        while left:
            part = self.read(min(left, 1 << 16))
            if not part:
                break
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def unread(self, data: bytes) -> None:
        self._head = data + self._head


@dataclass
class Opened:
    """What ``open_stdin`` hands PyAV: the pipe itself, or the whole stream spooled to a file (``spooled``)."""

    source: BinaryIO | TimedPipe
    spooled: bool


def _index_after_media(pipe: TimedPipe) -> tuple[bytes, bool]:
    """Read an MP4's top-level boxes until its index (``moov``/``moof``) or its media (``mdat``); the bytes read
    and whether the media came first. Not an MP4 (no ``ftyp`` first), or leading boxes past ``HEAD_LIMIT``:
    False."""
    head = b""
    while len(head) < HEAD_LIMIT:
        header = pipe.read_exactly(8)
        head += header
        if len(header) < 8:
            return head, False
        size, kind = struct.unpack(">I4s", header)
        if len(head) == 8 and kind != b"ftyp":  # an MP4 begins with its file type
            return head, False
        if kind in (b"moov", b"moof"):
            return head, False
        if kind == b"mdat":
            return head, True
        if size == 1:  # a 64-bit size follows
            extended = pipe.read_exactly(8)
            head += extended
            size = struct.unpack(">Q", extended)[0] - 8 if len(extended) == 8 else 0
        if size < 8:  # 0: the box runs to the end of the stream; less than its header: not an MP4's box
            return head, False
        head += pipe.read_exactly(size - 8)
    return head, False


def open_stdin(pipe: TimedPipe) -> Opened:
    """The stream on ``pipe`` as PyAV should open it (see the module)."""
    head, whole_first = _index_after_media(pipe)
    if not whole_first:
        pipe.unread(head)
        return Opened(pipe, False)
    spool = tempfile.TemporaryFile(prefix="asd-se-stdin-")
    spool.write(head)
    shutil.copyfileobj(pipe, spool)  # until the stream ends (the pipe's deadline and stop still hold)
    spool.seek(0)
    return Opened(spool, True)
