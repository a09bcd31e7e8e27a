"""Checks that catch plugin-author mistakes, and a hook-call tracer for debugging them.

A hook whose name is misspelled (``facepipe_register_detector``, singular) is silently ignored
by pluggy: the plugin simply never appears.  :func:`hook_mistakes` names such hooks, and the
correctly spelled hooks that lack the ``@hookimpl`` marker, so the registry can show them as
``error`` rows in ``facepipe plugins``.

:class:`HookTracer` writes one line per hook call to stderr; the registry turns it on when
``FACEPIPE_TRACE_PLUGINS=1``.
"""

from __future__ import annotations

import difflib
import os
import sys
from types import ModuleType
from typing import Any, Callable, Iterable, TextIO

import pluggy

from facepipe.hookspecs import PROJECT_NAME

HOOK_PREFIX = f"{PROJECT_NAME}_"
TRACE_ENV = "FACEPIPE_TRACE_PLUGINS"


def hook_mistakes(pm: pluggy.PluginManager, plugin: ModuleType | object,
                  known_hooks: Iterable[str]) -> list[str]:
    """One message per hook of ``plugin`` that pluggy will never call.

    ``plugin`` must already be registered with ``pm``.  Two mistakes are found: a ``@hookimpl``
    whose name has no hook specification (pluggy keeps it aside until ``check_pending``), and a
    plain function named ``facepipe_*`` without the ``@hookimpl`` marker.
    """
    known = sorted(known_hooks)
    problems: list[str] = []
    marked: set[str] = set()
    for caller in pm.get_hookcallers(plugin) or []:
        marked.add(caller.name)
        if not caller.has_spec():
            problems.append(f"unknown hook {caller.name!r}{_suggestion(caller.name, known)}")
    for attr, value in _own_functions(plugin):
        if not attr.startswith(HOOK_PREFIX) or attr in marked:
            continue
        if attr in known:
            problems.append(f"hook {attr!r} lacks the @hookimpl decorator, so it is never called")
        else:
            problems.append(f"unknown hook {attr!r} (a plain function, no @hookimpl){_suggestion(attr, known)}")
    return problems


def _suggestion(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; the hooks are {', '.join(known)}"


def _own_functions(plugin: ModuleType | object) -> list[tuple[str, Any]]:
    """Callables the plugin exposes under a ``facepipe_`` name (defined there or imported)."""
    found = []
    for attr in dir(plugin):
        if not attr.startswith(HOOK_PREFIX):
            continue
        try:
            value = getattr(plugin, attr)
        except Exception:  # a property that raises is not a hook
            continue
        if not callable(value):
            continue
        found.append((attr, value))
    return found


def tracing_requested() -> bool:
    """Whether ``FACEPIPE_TRACE_PLUGINS`` asks for hook-call tracing."""
    return os.environ.get(TRACE_ENV, "").strip().lower() not in ("", "0", "false", "no")


class HookTracer:
    """Writes ``facepipe trace: ...`` lines for hook calls to a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def write(self, line: str) -> None:
        stream = self._stream or sys.stderr  # looked up late so pytest's capture sees it
        print(f"{PROJECT_NAME} trace: {line}", file=stream, flush=True)

    def attach(self, pm: pluggy.PluginManager) -> Callable[[], None]:
        """Trace every call made through ``pm.hook``; returns the function that stops it."""

        def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
            plugins = ", ".join(pm.get_name(impl.plugin) or "?" for impl in impls)
            self.write(f"call {hook_name} -> [{plugins}]")

        def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
            failed = outcome.exception is not None
            self.write(f"done {hook_name}" + (f" (raised {outcome.exception!r})" if failed else ""))

        return pm.add_hookcall_monitoring(before, after)

    def call(self, hook_name: str, plugin_name: str, registered: list[str]) -> None:
        """Record one direct call of a plugin's hook and the plugin names it registered."""
        self.write(f"{hook_name} of {plugin_name} registered [{', '.join(registered)}]")
