#!/usr/bin/env python
"""A training subset of an ``asd-se talkset`` set (with ``--scenes``), chosen by video id so that it is the same on
every run: every scene and every val video kept; of the train split's talking-head videos, ``own``, ``voice`` and
``mix`` kept where sha1(video id) % 10 < 3 and ``shift`` where < 2 (the scenes then make up about half of the train
face-frames). Writes OUT/{annotations,categories,mouth_boxes}/{train,val}.csv and links OUT/videos to SET/videos,
ready for ``asd-se prep --dataset talkset --root OUT``.

    python scripts/subset_talkset.py SET OUT
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

KEEP_TENTHS = {"own": 3, "voice": 3, "mix": 3, "shift": 2}  # video id prefix -> tenths of its train videos kept
TABLES = ("annotations", "categories", "mouth_boxes")


def kept(video_id: str, split: str) -> bool:
    """Whether the subset keeps video ``video_id`` of ``split``."""
    if split == "val" or video_id.startswith("scene"):
        return True
    kind = next(prefix for prefix in KEEP_TENTHS if video_id.startswith(prefix))
    return int(hashlib.sha1(video_id.encode()).hexdigest(), 16) % 10 < KEEP_TENTHS[kind]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", type=Path, help="the asd-se talkset folder")
    parser.add_argument("out", type=Path, help="the subset's folder (created)")
    args = parser.parse_args()
    for table in TABLES:
        (args.out / table).mkdir(parents=True, exist_ok=True)
        for split in ("train", "val"):
            with open(args.set / table / f"{split}.csv", newline="") as handle:
                rows = [row for row in csv.reader(handle) if kept(row[0], split)]
            with open(args.out / table / f"{split}.csv", "w", newline="") as handle:
                csv.writer(handle).writerows(rows)
    if not (args.out / "videos").exists():
        (args.out / "videos").symlink_to((args.set / "videos").resolve())


if __name__ == "__main__":
    main()
