"""Slices of the 1-D arrays in an uncompressed ``.npz`` (``np.savez``), read without loading the arrays whole.

``np.load`` of an ``.npz`` reads (and checksums) a whole member to hand out any part of it; a 4 s training
window of a 10-minute track would read 150× the bytes it uses. An uncompressed member is a plain ``.npy``
stored at a fixed place in the archive, so its data can be sought directly.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, 22 bytes we skip, file name length, extra field length
NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class NpzLayoutError(ValueError):
    """The archive cannot be sliced (compressed, not 1-D, or not an ``.npz``); the message names the file."""


@dataclass(frozen=True)
class ArrayLayout:
    """Where a 1-D array's data starts in the archive file, its dtype and its length."""

    offset: int
    dtype: np.dtype
    length: int


def array_layouts(path: Path) -> dict[str, ArrayLayout]:
    """The layout of every array of the ``.npz`` at ``path``, by name (without ``.npy``)."""
    layouts = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise NpzLayoutError(f"{path}: {info.filename} is compressed; slices need np.savez archives")
            handle.seek(info.header_offset)
            signature, name_length, extra_length = LOCAL_HEADER.unpack(handle.read(LOCAL_HEADER.size))
            if signature != b"PK\x03\x04":
                raise NpzLayoutError(f"{path}: damaged archive (no local header for {info.filename})")
            handle.seek(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)
            version = np.lib.format.read_magic(handle)
            if version not in NPY_HEADER_READERS:
                raise NpzLayoutError(f"{path}: {info.filename} has .npy format {version}, not 1.0 or 2.0")
            shape, _, dtype = NPY_HEADER_READERS[version](handle)
            if len(shape) != 1:
                raise NpzLayoutError(f"{path}: {info.filename} has shape {shape}; only 1-D arrays are sliced")
            layouts[info.filename.removesuffix(".npy")] = ArrayLayout(handle.tell(), dtype, shape[0])
    return layouts


def read_slice(handle: BinaryIO, layout: ArrayLayout, start: int, stop: int) -> np.ndarray:
    """Elements ``[start, stop)`` of the array at ``layout``, from the archive opened as ``handle``."""
    start, stop = max(0, start), min(stop, layout.length)
    if stop <= start:
        return np.empty(0, layout.dtype)
    handle.seek(layout.offset + start * layout.dtype.itemsize)
    return np.frombuffer(handle.read((stop - start) * layout.dtype.itemsize), layout.dtype)
