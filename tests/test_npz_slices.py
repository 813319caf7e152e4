"""Slices of uncompressed .npz arrays read in place equal the slices of the whole arrays."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.npz_slices import NpzLayoutError, array_layouts, read_slice


def test_slices_equal_those_of_the_loaded_arrays(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"t0_jpeg": rng.integers(0, 256, 5000).astype(np.uint8), "t0_audio": rng.integers(-9, 9, 640, np.int16),
              "t1_offsets": np.cumsum(rng.integers(1, 9, 101)).astype(np.int64)}
    path = tmp_path / "video.npz"
    np.savez(path, **arrays)
    layouts = array_layouts(path)
    assert set(layouts) == set(arrays)
    with open(path, "rb") as handle:
        for name, array in arrays.items():
            for start, stop in [(0, len(array)), (3, 17), (len(array) - 2, len(array) + 50), (40, 40), (-5, 2)]:
                got = read_slice(handle, layouts[name], start, stop)
                assert got.dtype == array.dtype and np.array_equal(got, array[max(0, start):stop])


def test_compressed_or_multidimensional_archives_are_refused_by_name(tmp_path):
    np.savez_compressed(tmp_path / "packed.npz", a=np.arange(10))
    with pytest.raises(NpzLayoutError, match="packed.npz: a.npy is compressed"):
        array_layouts(tmp_path / "packed.npz")
    np.savez(tmp_path / "image.npz", a=np.zeros((4, 4)))
    with pytest.raises(NpzLayoutError, match="image.npz: a.npy has shape"):
        array_layouts(tmp_path / "image.npz")
