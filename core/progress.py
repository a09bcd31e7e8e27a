"""When facepipe shows progress bars, and the one way it draws them.

Long work (indexing a gallery, calibrating, downloading weights, reading a video, and any later
ingest job) reports through :class:`Progress`: a tqdm bar on stderr and/or a ``callback(done,
total)``.  Whether a bar is drawn is decided here, in this order:

1. an explicit ``progress=True`` / ``False`` argument of the call;
2. the process-wide setting of :func:`forced_progress` (the CLI's ``--quiet`` / ``--progress``);
3. ``FACEPIPE_PROGRESS`` (``1``/``always`` draws, ``0``/``never`` does not, ``auto`` or unset:
   step 4);
4. a bar only when stderr is a terminal, so logs and pipes stay clean.

tqdm is imported only when a bar is actually drawn.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Callable, Iterator, Union

#: what the ``progress`` argument of long-running calls accepts: None (decide as above), a bool
#: (draw / do not draw a bar), or a callable ``(done, total)`` (called instead of drawing a bar)
ProgressArg = Union[bool, None, Callable[[int, int], None]]

_ON = {"1", "true", "yes", "on", "always"}
_OFF = {"0", "false", "no", "off", "never"}
_forced: bool | None = None
_forced_lock = threading.Lock()


@contextlib.contextmanager
def forced_progress(show: bool | None) -> Iterator[None]:
    """Within the block, calls that leave ``progress`` unset draw bars (True) or not (False);
    None changes nothing.  Restored afterwards, so a CLI run inside tests leaks no setting."""
    global _forced
    with _forced_lock:
        previous, _forced = _forced, (show if show is not None else _forced)
    try:
        yield
    finally:
        with _forced_lock:
            _forced = previous


def _from_env() -> bool | None:
    raw = os.environ.get("FACEPIPE_PROGRESS", "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    return None  # unset, "auto" or unknown: decide by the terminal


def show_progress(progress: ProgressArg = None) -> bool:
    """Whether a bar is drawn for this ``progress`` argument (a callable draws none)."""
    if callable(progress):
        return False
    if progress is not None:
        return bool(progress)
    if _forced is not None:
        return _forced
    env = _from_env()
    if env is not None:
        return env
    stream = sys.stderr
    return bool(stream is not None and getattr(stream, "isatty", lambda: False)())


class Progress:
    """One piece of long work: ``advance(n)`` as it goes, ``close()`` (or ``with``) at the end.

    ``unit``/``desc`` label the bar; ``leave`` keeps the finished bar on screen; ``initial`` is
    work already done (a resumed download).
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", progress: ProgressArg = None,
                 leave: bool = True, initial: int = 0, **tqdm_options: Any) -> None:
        self.total = total
        self.done = initial
        self._callback = progress if callable(progress) else None
        self._bar: Any = None
        if show_progress(progress):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=leave, initial=initial,
                             file=sys.stderr, dynamic_ncols=True, **tqdm_options)

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units of work done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total if self.total is not None else self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Progress", "ProgressArg", "forced_progress", "show_progress"]
