"""Progress bars draw only on a terminal; in a log (CI, a file) each stage is one line."""

from __future__ import annotations

import io
import logging

from asd_se.core.progress import Progress, with_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_stage_is_one_log_line_and_no_redraws(monkeypatch, caplog):
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    with caplog.at_level(logging.INFO, logger="asd_se"):
        assert list(with_progress(range(500), "scoring", "track")) == list(range(500))
        with Progress("epoch 1/2", "batch") as bar:
            bar.update(3)
            bar.set_postfix(loss="0.5")
    assert stderr.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("scoring: 500 track in ")
    assert lines[1].startswith("epoch 1/2: 3 batch in ") and lines[1].endswith(", loss 0.5")


def test_on_a_terminal_the_bar_draws_and_nothing_is_logged(monkeypatch, caplog):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with caplog.at_level(logging.INFO, logger="asd_se"):
        list(with_progress(range(5), "scoring", "track"))
    assert "scoring" in terminal.getvalue() and "5/5" in terminal.getvalue()
    assert not caplog.records


def test_disabled_shows_nothing_anywhere(monkeypatch, caplog):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with caplog.at_level(logging.INFO, logger="asd_se"):
        list(with_progress(range(5), "scoring", "track", enabled=False))
    assert terminal.getvalue() == "" and not caplog.records
