"""The hard synthetic world: every phenomenon is present in what is generated (switching it off changes the
frames or the sound where it should), labels and mouth boxes stay exact, the standard world is untouched."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from asd_se.core.ava import NOT_SPEAKING
from asd_se.faces.detect import FaceDetector
from data_prep.synth.difficulty import FaceExtras, VideoExtras
from data_prep.synth.face import FacePose, draw_face, random_style
from data_prep.synth.plan import VideoSpec, annotation_rows, face_pose, label_at, mouth_openings, plan_scene
from data_prep.synth.render import render_audio, render_frames

HARD = [VideoSpec(f"hard_{i:02d}", 640, 360, Fraction(25), 12.0, 16000, 1, seed=300 + i, difficulty="hard")
        for i in range(32)]
PLANS = [plan_scene(spec) for spec in HARD]


def _first(condition) -> tuple:
    """The first (plan, face index, extras) of the hard plans whose face extras meet ``condition``."""
    for plan in PLANS:
        for index in range(len(plan.faces)):
            if condition(plan.extras.face(index)):
                return plan, index, plan.extras.face(index)
    raise AssertionError("no hard video has it")


def _frame(plan, t: float) -> np.ndarray:
    return next(f for k, f in enumerate(render_frames(plan)) if k == int(round(t * float(plan.spec.fps))))


def test_the_standard_world_has_none_of_it():
    spec = replace(HARD[0], difficulty="standard")
    extras = plan_scene(spec).extras
    assert extras == replace(VideoExtras(faces=extras.faces), seed=extras.seed)
    assert all(face == FaceExtras() for face in extras.faces)


def test_small_faces_are_drawn_small_and_their_rows_say_so():
    plan, index, extras = _first(lambda e: e.small_width_px is not None)
    widths = [(r.box[2] - r.box[0]) * plan.spec.width for r in annotation_rows(plan)
              if r.entity_id.startswith(f"{plan.spec.video_id}:{index}")]
    assert widths and 20 <= np.median(widths) < 64 and np.percentile(widths, 10) >= 20  # (rows at the edge: clipped)


def test_a_small_face_is_a_far_one_softened_and_hazy_and_nothing_else_is():
    plan, index, extras = _first(lambda e: e.small_width_px is not None)
    assert extras.far_blur_px > 0 and extras.far_contrast < 1
    t = next(float(t) for t in plan.spec.frame_times[25::12]
             if (pose := face_pose(plan, index, float(t), 0.0)) is not None and pose.box[0] > 0 and pose.box[1] > 0
             and pose.box[2] < plan.spec.width and pose.box[3] < plan.spec.height)
    crisp = replace(plan, extras=replace(plan.extras, faces=tuple(
        replace(f, far_blur_px=0.0, far_contrast=1.0) if i == index else f for i, f in enumerate(plan.extras.faces))))
    far, near = _frame(plan, t).astype(float), _frame(crisp, t).astype(float)
    x1, y1, x2, y2 = (int(v) for v in face_pose(plan, index, t, 0.0).box)
    face_far, face_near = far[y1:y2, x1:x2].mean(axis=2), near[y1:y2, x1:x2].mean(axis=2)
    assert face_far.std() < 0.8 * face_near.std()  # less contrast on the face
    # sharp edges (eyes, lips) are gone: the mean absolute horizontal gradient drops
    assert np.abs(np.diff(face_far, axis=1)).mean() < 0.7 * np.abs(np.diff(face_near, axis=1)).mean()
    reach = 0.45 * (y2 - y1) + 2
    outside = np.ones(far.shape[:2], bool)
    outside[max(0, int(y1 - reach)):int(y2 + reach) + 1, max(0, int(x1 - reach)):int(x2 + reach) + 1] = False
    assert np.array_equal(far[outside], near[outside])  # the rest of the frame is untouched


def _open_mouth_times(plan, index: int, stretches) -> list[float]:
    """Times inside ``stretches`` at which face ``index`` has its mouth widest open, widest first."""
    times = np.concatenate([np.linspace(a, b, 20, endpoint=False) for a, b in stretches])
    openings = mouth_openings(plan, times)[index]
    return [float(t) for t in times[np.argsort(-openings)][:5]]


@pytest.mark.parametrize("kind", ["hand", "microphone"])
def test_an_occluder_covers_part_of_the_mouth_and_nothing_far_from_it(kind):
    def inside(plan, index, t):
        pose = face_pose(plan, index, t, float(mouth_openings(plan, np.array([t]))[index, 0]))
        if pose is None:
            return None
        x1, y1, x2, y2 = pose.mouth_box(plan.faces[index].style.aspect)
        seen = x1 > 0 and y1 > 0 and x2 < plan.spec.width and y2 < plan.spec.height and x2 - x1 > 20
        return pose if seen and plan.extras.light_gain == 1 else None

    assert {f.occluder for p in PLANS for f in p.extras.faces if f.occlusions} == {"hand", "microphone"}
    plan, index, t, pose = next(
        (plan, index, t, pose) for plan in PLANS for index, face in enumerate(plan.extras.faces)
        if face.occlusions
        for t in _open_mouth_times(plan, index, face.occlusions) if (pose := inside(plan, index, t)) is not None)
    plan = replace(plan, extras=replace(plan.extras, faces=tuple(
        replace(f, occluder=kind) if i == index else f for i, f in enumerate(plan.extras.faces))))
    bare = replace(plan, extras=replace(plan.extras, faces=tuple(
        replace(f, occlusions=()) if i == index else f for i, f in enumerate(plan.extras.faces))))
    covered, clear = _frame(plan, t).astype(int), _frame(bare, t).astype(int)
    x1, y1, x2, y2 = (int(v) for v in pose.mouth_box(plan.faces[index].style.aspect))
    changed = np.abs(covered - clear).sum(axis=2) > 20
    assert changed[y1:y2, x1:x2].mean() > 0.1  # the open mouth is partly hidden (a hand is skin-coloured)
    far = changed.copy()
    far[max(0, y1 - 3 * (y2 - y1)):y2 + 3 * (y2 - y1), max(0, x1 - 3 * (x2 - x1)):x2 + 4 * (x2 - x1)] = False
    assert far.mean() < 0.001  # and nothing else is


def test_a_turned_face_keeps_its_mouth_inside_its_mouth_box():
    style = random_style(np.random.default_rng(0))
    for yaw in (-1.0, -0.7, 0.0, 0.7, 1.0):
        image = np.zeros((240, 320, 3), np.uint8)
        pose = FacePose(160.0, 120.0, 150.0, yaw, 0.8)
        draw_face(image, pose, style)
        dark_mouth = np.all(np.abs(image.astype(int) - (35, 20, 45)) < 3, axis=2)  # the open mouth's inside
        ys, xs = np.nonzero(dark_mouth)
        x1, y1, x2, y2 = pose.mouth_box(style.aspect)
        assert len(xs) > 20 and x1 <= xs.min() and xs.max() <= x2 and y1 <= ys.min() and ys.max() <= y2, yaw


def test_turned_subtle_and_out_of_sync_faces_exist_and_act_so():
    plan, index, extras = _first(lambda e: e.max_yaw is not None)
    times = plan.spec.frame_times
    yaws = [abs(p.yaw) for t in times if (p := face_pose(plan, index, float(t), 0.0)) is not None]
    assert max(yaws) > 0.55  # towards profile (standard faces stay under 0.1)
    plan, index, extras = _first(lambda e: e.mouth_gain < 1)
    assert mouth_openings(plan, times)[index].max() <= extras.mouth_gain + 1e-9
    plan, index, extras = _first(lambda e: e.lip_offset_s != 0)
    synced = replace(plan, extras=replace(plan.extras, faces=tuple(
        replace(f, lip_offset_s=0.0) if i == index else f for i, f in enumerate(plan.extras.faces))))
    shift = int(round(extras.lip_offset_s * 25))
    moved, still = mouth_openings(plan, times)[index], mouth_openings(synced, times)[index]
    assert moved.any() and not np.allclose(moved, still)
    assert np.allclose(moved[max(shift, 0):len(times) + min(shift, 0)],
                       still[max(-shift, 0):len(times) - max(shift, 0)], atol=1e-6)  # the same motion, shifted


def test_laughter_is_heard_and_seen_but_labelled_not_speaking():
    plan = next(p for p in PLANS if any(u.laugh for u in p.utterances))
    laugh = next(u for u in plan.utterances if u.laugh)
    t = (laugh.start + laugh.end) / 2
    assert label_at(plan, laugh.speaker, t) == NOT_SPEAKING
    times = np.arange(laugh.start - 0.2, laugh.end + 0.2, 0.01)  # lips may lag or lead by up to 0.12 s
    assert mouth_openings(plan, times)[laugh.speaker].max() > 0.15
    quiet = replace(plan, utterances=tuple(u for u in plan.utterances if u is not laugh))
    rate = plan.spec.audio_rate
    span = slice(int(laugh.start * rate), int(laugh.end * rate))
    assert np.std(render_audio(plan)[0, span]) > 1.5 * np.std(render_audio(quiet)[0, span])


def test_blur_low_light_compression_and_music_are_drawn_per_video():
    assert any(p.extras.blur for p in PLANS) and any(p.extras.light_gain < 0.5 for p in PLANS)
    assert any(p.extras.crf >= 36 for p in PLANS) and any(p.extras.music_db is not None for p in PLANS)
    plan = next(p for p in PLANS if p.extras.blur)
    start, end, _ = plan.extras.blur[0]
    sharp = replace(plan, extras=replace(plan.extras, blur=()))
    t = (start + end) / 2
    blurred, clear = _frame(plan, t).astype(float), _frame(sharp, t).astype(float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.8 * np.abs(np.diff(clear, axis=1)).mean()
    plan = next(p for p in PLANS if p.extras.light_gain < 0.5)
    lit = replace(plan, extras=replace(plan.extras, light_gain=1.0))
    assert _frame(plan, 1.0).mean() < 0.6 * _frame(lit, 1.0).mean()
    plan = next(p for p in PLANS if p.extras.music_db is not None)
    silent = replace(plan, extras=replace(plan.extras, music_db=None))
    difference = render_audio(plan)[0] - render_audio(silent)[0]
    spectrum = np.abs(np.fft.rfft(difference[: 4 * plan.spec.audio_rate]))
    assert np.std(difference) > 0.01 and spectrum.argmax() > 0  # a bed of tones under the scene


def test_the_detector_finds_the_faces_it_can_be_expected_to_find():
    """Findable: at least 64 px wide, turned less than 0.5, mouth not covered, no blur or low light then,
    wholly inside the frame. Small, profile, occluded, blurred and dark faces are the hard part by design."""
    detector = FaceDetector()
    found = total = 0
    for plan in PLANS[:4]:
        spec, extras = plan.spec, plan.extras
        times = spec.frame_times
        openings = mouth_openings(plan, times)
        for k, image in enumerate(render_frames(plan)):
            if k % 5 or extras.light_gain < 1 or any(a <= times[k] < b for a, b, _ in extras.blur):
                continue
            detections = detector(image)
            for index in range(len(plan.faces)):
                pose = face_pose(plan, index, float(times[k]), float(openings[index, k]))
                face = extras.face(index)
                if pose is None or abs(pose.yaw) > 0.5 or any(a <= times[k] < b for a, b in face.occlusions):
                    continue
                x1, y1, x2, y2 = pose.box
                if x2 - x1 < 64 or x1 < 0 or y1 < 0 or x2 > spec.width or y2 > spec.height:
                    continue
                total += 1
                found += any(min(x2, d.box[2]) > max(x1, d.box[0]) and min(y2, d.box[3]) > max(y1, d.box[1])
                             for d in detections)
    assert total >= 50 and found / total >= 0.95, (found, total)
