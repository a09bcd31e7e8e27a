"""What a download tells the user: a progress bar when asked, a quick clear failure without network.

The name-resolution test uses the reserved ``.invalid`` top-level domain (RFC 6761), which never
resolves, so it needs no network and contacts nothing.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from facepipe.errors import WeightsError
from facepipe.progress import forced_progress
from facepipe.specs import WeightFile
from facepipe.weights import WeightsManager


def _manager(home: Path, **kw: object) -> WeightsManager:
    options: dict[str, object] = {"offline": False, "deepface_home": home / "df", "mirrors": (),
                                  "retries": 4, "backoff": 1.0, "timeout": 5.0}
    options.update(kw)
    return WeightsManager(home / "fp", **options)  # type: ignore[arg-type]


def test_an_unresolvable_host_fails_fast_without_retries(tmp_path: Path) -> None:
    wf = WeightFile(name="model.bin", urls=("http://weights.nonexistent.invalid/model.bin",
                                            "http://mirror.nonexistent.invalid/model.bin"))
    manager = _manager(tmp_path, progress=False)  # 4 retries with 1 s backoff: 15 s if it retried
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        manager.path(wf)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, f"took {elapsed:.1f} s: a DNS failure must not be retried"
    message = str(info.value)
    assert "does not resolve" in message
    assert "weights.nonexistent.invalid" in message and "mirror.nonexistent.invalid" in message
    assert "FACEPIPE_OFFLINE=1" in message
    assert str(manager.cache_path(wf)) in message


def _local_weight(tmp_path: Path) -> WeightFile:
    data = bytes(range(256)) * 4000  # ~1 MB: a few chunks
    source = tmp_path / "served" / "model.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    return WeightFile(name="model.bin", urls=(source.as_uri(),), sha256=hashlib.sha256(data).hexdigest(),
                      size=len(data))


def test_download_draws_a_bar_on_stderr_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = _local_weight(tmp_path)
    _manager(tmp_path, progress=True).path(wf)
    err = capsys.readouterr().err
    assert "model.bin:" in err and "0.98M" in err  # the bar, labelled with the file, sized in bytes


def test_download_bar_follows_the_process_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wf = _local_weight(tmp_path)
    with forced_progress(False):  # what `facepipe --quiet` sets
        _manager(tmp_path / "a").path(wf)
    assert capsys.readouterr().err == ""
    with forced_progress(True):  # what `facepipe --progress` sets
        _manager(tmp_path / "b").path(wf)
    assert "model.bin:" in capsys.readouterr().err
