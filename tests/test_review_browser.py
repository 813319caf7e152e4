"""The review page in a real browser (``tests/browser.py``: headless Chromium from Debian's packages; skipped, with
the reason, where it is missing)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser import missing

from asd_se.core.annotations import read_csv
from asd_se.render.pipeline import RenderSettings, render_video


@pytest.fixture(scope="module")
def page(synth_root, checkpoint, tmp_path_factory) -> Path:
    """The review page of the synthetic val video rendered against its annotations (ground truth)."""
    if missing():
        pytest.skip(missing())
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    out = tmp_path_factory.mktemp("page") / "clip.mp4"
    render_video(synth_root / "videos" / f"{rows[0].video_id}.mp4", checkpoint, out,
                 synth_root / "annotations" / "val.csv", RenderSettings(preset="ultrafast"), progress=False)
    return out.with_suffix(".html")


def _open(browser, page: Path) -> dict:
    """Load the page, wait for the video's first frame; the page's data."""
    browser.get(page.as_uri())
    for _ in range(100):
        if browser.execute_script("return window.asdReview && window.asdReview.stats.firstFrameMs !== null"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the video's first frame was never drawn")
    return browser.execute_script("return JSON.parse(document.getElementById('data').textContent)")


def _seconds(browser) -> float:
    return browser.execute_script("return document.getElementById('video').currentTime")


def _overlay_pixels(browser) -> list[int]:
    """Sum of each RGBA channel over the overlay canvas."""
    return browser.execute_script("""
        const c = document.getElementById('overlay'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const s = [0, 0, 0, 0];
        for (let i = 0; i < d.length; i++) s[i % 4] += d[i];
        return s;""")


def test_page_loads_without_console_errors_with_one_lane_per_track(browser, page):
    data = _open(browser, page)
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    lanes = browser.find_elements("css selector", ".lane.probability")
    assert len(lanes) == len(data["tracks"]) >= 1
    assert [lane.get_attribute("data-track") for lane in lanes] == [t["name"] for t in data["tracks"]]
    assert browser.execute_script("return document.getElementById('video').readyState") >= 2


def test_clicking_a_lane_seeks_the_video_to_that_time(browser, page):
    from selenium.webdriver.common.action_chains import ActionChains

    data = _open(browser, page)
    lane = browser.find_elements("css selector", ".lane.probability canvas")[0]
    duration = browser.execute_script("return document.getElementById('video').duration")
    for fraction in (0.25, 0.75):
        offset = int(lane.size["width"] * fraction) - lane.size["width"] // 2
        ActionChains(browser).move_to_element_with_offset(lane, offset, 0).click().perform()
        assert _seconds(browser) == pytest.approx(duration * fraction, abs=duration * 2 / lane.size["width"] + 0.05)
    assert data["duration"] == pytest.approx(duration, abs=0.1)


def test_toggling_the_heatmap_changes_the_drawn_pixels(browser, page):
    data = _open(browser, page)
    track = data["tracks"][0]
    browser.execute_script("window.asdReview.seek(arguments[0])", track["t"][len(track["t"]) // 2])
    time.sleep(0.3)
    with_maps = _overlay_pixels(browser)
    browser.find_element("id", "layer-heatmaps").click()
    without_maps = _overlay_pixels(browser)
    assert with_maps != without_maps and with_maps[3] > without_maps[3] > 0  # the box and label stay
    browser.find_element("id", "layer-boxes").click()
    browser.find_element("id", "layer-labels").click()
    assert _overlay_pixels(browser) == [0, 0, 0, 0]
    for layer in ("heatmaps", "boxes", "labels"):
        browser.find_element("id", f"layer-{layer}").click()
    assert _overlay_pixels(browser) == with_maps


def test_error_list_seeks_to_each_error_and_keys_step(browser, page, tmp_path_factory):
    data = _open(browser, page)
    errors = data["truth"]["errors"]
    assert errors, "the untrained model makes no error on the val video: the test needs one"
    items = browser.find_elements("css selector", "#errors li")
    assert len(items) == len(errors)
    for item, error in list(zip(items, errors))[:5]:
        item.click()
        assert _seconds(browser) == pytest.approx(error["start"], abs=0.01)
        assert "current" in item.get_attribute("class")
    browser.find_element("tag name", "body").send_keys("n")  # the error after the last one clicked
    assert _seconds(browser) == pytest.approx(errors[min(5, len(errors)) % len(errors)]["start"], abs=0.01)
    before = _seconds(browser)
    browser.find_element("tag name", "body").send_keys("\ue014")  # right arrow: one frame on
    assert _seconds(browser) == pytest.approx(before + 1 / data["fps"], abs=0.005)
    assert "AP" in browser.find_element("id", "truth-figures").text
    shot = tmp_path_factory.mktemp("shots") / "review.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_the_annotated_mp4_is_the_other_choice_and_the_page_draws_nothing_over_it(browser, page):
    from selenium.webdriver.support.ui import Select

    data = _open(browser, page)
    assert [v["overlays"] for v in data["videos"]] == [True, False]  # the synthetic input plays in a browser
    browser.execute_script("window.asdReview.seek(arguments[0])", data["tracks"][0]["t"][5])
    assert _overlay_pixels(browser)[3] > 0
    Select(browser.find_element("id", "source")).select_by_index(1)
    for _ in range(50):
        if browser.execute_script("return document.getElementById('video').readyState") >= 2:
            break
        time.sleep(0.1)
    assert browser.execute_script("return document.getElementById('video').getAttribute('src')") == "clip.mp4"
    assert _overlay_pixels(browser) == [0, 0, 0, 0]
    assert browser.find_element("id", "layer-heatmaps").get_attribute("disabled")


def test_videos_in_a_folder_with_spaces_and_hashes_load(browser, page, tmp_path):
    from selenium.webdriver.support.ui import Select

    from asd_se.cli import main

    folder = tmp_path / "my clips #1"
    folder.mkdir()
    for suffix in (".json", ".mp4"):
        (folder / f"take 50%{suffix}").write_bytes(page.with_suffix(suffix).read_bytes())
    assert main(["review", str(folder / "take 50%.json")]) == 0
    _open(browser, folder / "take 50%.html")  # waits for the first frame of the source video
    Select(browser.find_element("id", "source")).select_by_index(1)
    for _ in range(50):
        if browser.execute_script("return document.getElementById('video').readyState") >= 2:
            break
        time.sleep(0.1)
    assert browser.execute_script("return document.getElementById('video').readyState") >= 2
    assert browser.execute_script("return window.asdReview.stats.errors") == []
