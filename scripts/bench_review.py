#!/usr/bin/env python
"""Issue-16 goals: the review page of a long render in headless Chromium. Prints JSON.

Renders a synthetic video (default: 10 minutes of 1280x720 at 25 fps, 1 face; an untrained light model with an
SE block unless ``--checkpoint``), then reports the sizes of OUT.json / OUT.html / OUT.mp4, and, in Debian's
Chromium driven by Selenium (``scripts/test.sh`` installs both), the page's own timings: navigation start to
the first video frame drawn with its overlay, and, over ``--play`` seconds of playback, the overlay's draws
per second, its mean cost per draw, and the frames the video presented and dropped.

    python scripts/bench_review.py [--minutes 10] [--width 1280 --height 720] [--faces 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000", "--autoplay-policy=no-user-gesture-required")


def measure_page(page: Path, play_s: float) -> dict:
    """Open ``page`` in headless Chromium, wait for the first frame, play ``play_s`` seconds muted."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS + (f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(page.as_uri())
        for _ in range(600):
            if driver.execute_script("return !!window.asdReview && window.asdReview.stats.firstFrameMs !== null"):
                break
            time.sleep(0.05)
        first = driver.execute_script("return window.asdReview.stats.firstFrameMs")
        driver.execute_script("""const s = window.asdReview.stats; s.overlayFrames = 0; s.overlayMs = 0;
            s.playbackFrames = 0; s.playbackStartMs = null; const v = document.getElementById('video');
            v.muted = true; v.currentTime = Math.min(60, v.duration / 4); v.play();""")
        time.sleep(play_s)
        stats = driver.execute_script("""const s = window.asdReview.stats, v = document.getElementById('video');
            const q = v.getVideoPlaybackQuality(); v.pause();
            return {frames: s.overlayFrames, ms: s.overlayMs, presented: s.playbackFrames,
                    wall: performance.now() - s.playbackStartMs, dropped: q.droppedVideoFrames,
                    total: q.totalVideoFrames, time: v.currentTime};""")
        severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    wall_s = stats["wall"] / 1000.0
    return {"navigation_to_first_frame_ms": round(first, 1), "played_s": round(wall_s, 2),
            "overlay_draws_per_s": round(stats["frames"] / wall_s, 1),
            "overlay_ms_per_draw": round(stats["ms"] / max(stats["frames"], 1), 2),
            "video_frames_presented_per_s": round(stats["presented"] / wall_s, 1),
            "dropped_frames": stats["dropped"], "decoded_frames": stats["total"], "console_errors": severe}


def main() -> None:
    # imported here, not at the top: the detector's spawned workers re-import this script's top level
    import torch

    from asd_se.render.pipeline import RenderSettings, render_video

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_render import make_video, untrained_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--play", type=float, default=10.0, help="seconds of playback measured")
    parser.add_argument("--checkpoint", type=Path, help="default: an untrained light model with SE")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_render")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or untrained_checkpoint(args.cache)
    video = make_video(args.cache, args.faces, args.minutes * 60, args.width, args.height)
    out = args.cache / f"review_{video.stem}.mp4"
    result = render_video(video, checkpoint, out, settings=RenderSettings(), progress=False)
    sizes = {name: round(path.stat().st_size / 1e6, 2) for name, path in result.outputs.items()}
    print(json.dumps({
        "machine": f"{platform.machine()}, torch {torch.__version__}, Chromium headless (software decoding)",
        "video": f"{args.minutes:g} min {args.width}x{args.height} 25 fps, {result.tracks} tracks",
        "render_s": round(result.seconds, 1), "review_page_s": result.timings.get("review"),
        "sizes_mb": sizes, "page": measure_page(result.outputs["review"], args.play)}, indent=1))


if __name__ == "__main__":
    main()
