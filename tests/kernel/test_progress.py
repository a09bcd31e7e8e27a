"""facepipe.progress: who decides whether a bar is drawn (call > CLI setting > FACEPIPE_PROGRESS > terminal)."""

from __future__ import annotations

import io

import pytest

from facepipe.progress import Progress, forced_progress, show_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEPIPE_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert show_progress(None) is False  # not a terminal
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert show_progress(None) is True
    monkeypatch.setenv("FACEPIPE_PROGRESS", "0")
    assert show_progress(None) is False
    with forced_progress(True):
        assert show_progress(None) is True
        assert show_progress(False) is False  # the call's own choice wins
        with forced_progress(None):  # None keeps the outer setting
            assert show_progress(None) is True
    assert show_progress(None) is False  # restored
    monkeypatch.setenv("FACEPIPE_PROGRESS", "always")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert show_progress(None) is True
    assert show_progress(lambda done, total: None) is False  # a callback replaces the bar


def test_callback_gets_done_and_total(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    with Progress(5, "work", progress=lambda done, total: seen.append((done, total))) as bar:
        bar.advance(2)
        bar.advance(3)
    assert seen == [(2, 5), (5, 5)]


def test_bar_writes_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with Progress(4, "Counting", unit="thing", progress=True) as bar:
        bar.advance(4)
    assert "Counting" in err.getvalue() and "4/4" in err.getvalue()
