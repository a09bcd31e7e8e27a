"""Plugin discovery and lookup.

A :class:`PluginRegistry` collects :class:`~facepipe.specs.PluginSpec` records from the modules
named by entry points in the ``facepipe`` group (the built-ins use the same entry points as
third-party packages).  It imports plugin *modules* (light) but never their factories: the
class that does the work is imported only by :meth:`PluginRegistry.create`.

Environment controls (read when a registry loads):

``FACEPIPE_DISABLE_PLUGIN_AUTOLOAD=1``
    load only the entry points of the ``facepipe`` distribution itself (third-party plugins off);
``FACEPIPE_PLUGINS_ALLOW=a,b``
    load only these entry-point names or distributions (built-ins included in the check);
``FACEPIPE_PLUGINS_BLOCK=a,b``
    skip these entry-point names or distributions;
``FACEPIPE_TRACE_PLUGINS=1``
    write one line per hook call (which plugin, which names it registered) to stderr.

Plugin-author mistakes are reported, not ignored: a module defining a hook facepipe does not
know (``facepipe_register_detector``, singular — with ``@hookimpl`` or as a plain function) or a
correctly named hook without ``@hookimpl`` shows up as an ``error`` row in ``facepipe plugins``
naming the hook and the right spelling (see :mod:`facepipe.plugin_hygiene`).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import threading
import traceback
from dataclasses import dataclass, replace
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable, Iterator, Mapping

import pluggy
from pydantic import ValidationError

from facepipe import hookspecs
from facepipe.errors import (
    ConfigError,
    PluginConflictError,
    PluginError,
    PluginNotFoundError,
    PluginUnavailableError,
)
from facepipe.plugin_hygiene import HookTracer, hook_mistakes, tracing_requested
from facepipe.specs import KINDS, PluginKind, PluginSpec, WeightFile
from facepipe.types import PluginConfig

ENTRY_POINT_GROUP = "facepipe"
_HOOKS: dict[str, PluginKind] = {
    "facepipe_register_detectors": "detector",
    "facepipe_register_recognizers": "recognizer",
    "facepipe_register_analyzers": "analyzer",
    "facepipe_register_metrics": "metric",
    "facepipe_register_antispoofers": "antispoofer",
    "facepipe_register_stores": "store",
}


@dataclass(frozen=True)
class PluginInfo:
    """One row of ``facepipe plugins``."""

    name: str
    kind: str
    distribution: str | None
    version: str | None
    status: str  # "ok" | "missing extra" | "error" | "conflict"
    extra: str | None
    install: str
    aliases: tuple[str, ...] = ()
    error: str | None = None
    description: str = ""
    license: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "distribution": self.distribution,
            "version": self.version, "status": self.status, "extra": self.extra,
            "install": self.install, "aliases": list(self.aliases), "error": self.error,
            "description": self.description, "license": self.license,
        }


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point whose module could not be imported or whose hook raised."""

    entry_point: str
    distribution: str | None
    version: str | None
    error: str


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _key(name: str) -> str:
    return name.strip().lower()


class PluginRegistry:
    """Holds the plugins known to one process, service or test.

    ``PluginRegistry()`` discovers entry points; ``PluginRegistry(autoload=False)`` starts empty
    (add modules with :meth:`register_module`), which keeps tests hermetic.
    """

    def __init__(self, *, autoload: bool = True, allow: Iterable[str] | None = None,
                 block: Iterable[str] | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._specs: dict[tuple[str, str], list[PluginSpec]] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self._broken: list[BrokenPlugin] = []
        self._lock = threading.RLock()
        self._tracer = HookTracer() if tracing_requested() else None
        if self._tracer is not None:
            self._tracer.attach(self._pm)
        self._allow = set(allow) if allow is not None else _env_list("FACEPIPE_PLUGINS_ALLOW")
        self._block = set(block) if block is not None else (_env_list("FACEPIPE_PLUGINS_BLOCK") or set())
        if autoload:
            self.load_entry_points()

    # ----------------------------------------------------------------------------- discovery
    def load_entry_points(self) -> None:
        """Import every module named in the ``facepipe`` entry-point group and collect its specs."""
        only_builtin = os.environ.get("FACEPIPE_DISABLE_PLUGIN_AUTOLOAD", "").strip() not in ("", "0")
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if only_builtin and dist != "facepipe":
                continue
            if self._allow is not None and ep.name not in self._allow and dist not in self._allow:
                continue
            if ep.name in self._block or (dist is not None and dist in self._block):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must never break the others
                self._broken.append(BrokenPlugin(ep.name, dist, version, _describe(exc)))
                continue
            self.register_module(module, distribution=dist, version=version, name=ep.name)

    def register_module(self, module: ModuleType | object, *, distribution: str | None = None,
                        version: str | None = None, name: str | None = None) -> None:
        """Collect the specs a hook-implementing module (or object) registers."""
        plugin_name = name or getattr(module, "__name__", None) or repr(module)
        with self._lock:
            if self._pm.get_plugin(plugin_name) is None:
                self._pm.register(module, name=plugin_name)
                for problem in hook_mistakes(self._pm, module, _HOOKS):
                    self._broken.append(BrokenPlugin(plugin_name, distribution, version, problem))
            for hook_name, kind in _HOOKS.items():
                for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is not module:
                        continue

                    registered: list[str] = []

                    def register(spec: PluginSpec, _kind: PluginKind = kind) -> None:
                        if spec.kind != _kind:
                            raise PluginError(f"{hook_name} registered a {spec.kind!r} spec ({spec.name!r})")
                        self.add(replace(spec, distribution=distribution, version=version))
                        registered.append(spec.name)

                    try:
                        impl.function(register=register)
                        if self._tracer is not None:
                            self._tracer.call(hook_name, plugin_name, registered)
                    except Exception as exc:
                        self._broken.append(BrokenPlugin(plugin_name, distribution, version, _describe(exc)))

    def add(self, spec: PluginSpec) -> None:
        """Add one spec directly (what ``register`` does inside a hook)."""
        with self._lock:
            key = (spec.kind, _key(spec.name))
            existing = self._specs.setdefault(key, [])
            if any(s.factory == spec.factory and s.distribution == spec.distribution for s in existing):
                return  # the same module registered twice
            existing.append(spec)
            for alias in spec.aliases:
                self._aliases.setdefault((spec.kind, _key(alias)), _key(spec.name))

    # ----------------------------------------------------------------------------- lookup
    def names(self, kind: PluginKind) -> list[str]:
        """Canonical names of the plugins of one kind, sorted."""
        return sorted(specs[0].name for (k, _), specs in self._specs.items() if k == kind)

    def has(self, kind: PluginKind, name: str) -> bool:
        """Whether a plugin of that kind is registered under ``name`` or an alias."""
        key = _key(name)
        return (kind, self._aliases.get((kind, key), key)) in self._specs

    def get(self, kind: PluginKind, name: str) -> PluginSpec:
        """The spec registered under ``name`` (or an alias), case-insensitively."""
        if kind not in KINDS:
            raise ConfigError(f"unknown plugin kind {kind!r}; expected one of {', '.join(KINDS)}")
        key = _key(name)
        key = self._aliases.get((kind, key), key)
        specs = self._specs.get((kind, key))
        if not specs:
            raise PluginNotFoundError(self._not_found_message(kind, name))
        if len(specs) > 1:
            owners = " and ".join(f"{s.distribution or '?'} ({s.factory})" for s in specs)
            raise PluginConflictError(
                f"the {kind} name {name!r} is registered twice: by {owners}; "
                f"uninstall one, or block one with FACEPIPE_PLUGINS_BLOCK"
            )
        return specs[0]

    def _not_found_message(self, kind: str, name: str) -> str:
        choices = self.names(kind)  # type: ignore[arg-type]
        every = choices + [alias for (k, alias) in self._aliases if k == kind]
        lowered = {c.lower(): c for c in choices}
        close = difflib.get_close_matches(name.lower(), [c.lower() for c in every], n=1, cutoff=0.5)
        hint = ""
        if close:
            canonical = lowered.get(close[0]) or self._canonical(kind, close[0])
            hint = f" Did you mean {canonical!r}?"
        return f"unknown {kind} {name!r}.{hint} Installed {kind}s: {', '.join(choices) or 'none'}."

    def _canonical(self, kind: str, key: str) -> str:
        target = self._aliases.get((kind, key), key)
        specs = self._specs.get((kind, target))
        return specs[0].name if specs else key

    def status(self, spec: PluginSpec) -> str:
        """``ok`` when the modules the factory needs are importable, else ``missing extra``."""
        missing = [mod for mod in spec.requires if not _importable(mod)]
        return "missing extra" if missing else "ok"

    def missing_modules(self, spec: PluginSpec) -> list[str]:
        return [mod for mod in spec.requires if not _importable(mod)]

    def plugins(self) -> list[PluginInfo]:
        """Every known plugin, broken ones included, for ``facepipe plugins``."""
        rows: list[PluginInfo] = []
        for (_kind, _), specs in sorted(self._specs.items()):
            conflict = len(specs) > 1
            for spec in specs:
                status = "conflict" if conflict else self.status(spec)
                error = None
                if conflict:
                    error = "name registered by " + " and ".join(str(s.distribution) for s in specs)
                elif status != "ok":
                    error = "missing modules: " + ", ".join(self.missing_modules(spec))
                rows.append(PluginInfo(
                    name=spec.name, kind=spec.kind, distribution=spec.distribution,
                    version=spec.version, status=status, extra=spec.extra,
                    install=spec.install_hint if status == "missing extra" else "",
                    aliases=spec.aliases, error=error, description=spec.description,
                    license=spec.license,
                ))
        for broken in self._broken:
            rows.append(PluginInfo(
                name=broken.entry_point, kind="unknown", distribution=broken.distribution,
                version=broken.version, status="error", extra=None, install="", error=broken.error,
            ))
        return rows

    @property
    def broken(self) -> list[BrokenPlugin]:
        return list(self._broken)

    def weight_files(self) -> Iterator[tuple[PluginSpec, WeightFile]]:
        """``(spec, weight file)`` for every weight of every plugin (for ``facepipe models``).
        Plugins whose name is registered twice are skipped: :meth:`plugins` reports them as conflicts."""
        for kind in KINDS:
            for name in self.names(kind):
                try:
                    spec = self.get(kind, name)
                except PluginConflictError:
                    continue
                for wf in spec.weights:
                    yield spec, wf

    # ----------------------------------------------------------------------------- building
    def validate_config(self, kind: PluginKind, name: str, options: Mapping[str, Any] | PluginConfig | None,
                        *, path: str | None = None) -> PluginConfig:
        """Validate plugin options against the plugin's config class; errors name the key path."""
        spec = self.get(kind, name)
        if isinstance(options, spec.config):
            return options
        if isinstance(options, PluginConfig):
            options = options.model_dump()
        try:
            return spec.config.model_validate(dict(options or {}))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, prefix=path or kind)) from None

    def load_factory(self, spec: PluginSpec) -> Any:
        """Import the class (or callable) that does the work."""
        missing = self.missing_modules(spec)
        if missing:
            raise PluginUnavailableError(
                f"the {spec.kind} {spec.name!r} needs {', '.join(missing)}, which is not installed: "
                f"{spec.install_hint}"
            )
        module_name, _, attr = spec.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr) if attr else module
        except ImportError as exc:
            raise PluginUnavailableError(
                f"the {spec.kind} {spec.name!r} could not be imported ({exc}); {spec.install_hint}".rstrip("; ")
            ) from exc

    def create(self, kind: PluginKind, name: str, options: Mapping[str, Any] | PluginConfig | None = None,
               *, weights: Any = None) -> Any:
        """Build a plugin instance from its name and options."""
        spec = self.get(kind, name)
        config = self.validate_config(kind, name, options)
        factory = self.load_factory(spec)
        instance = factory(config, weights=weights)
        try:
            instance.spec = spec
        except AttributeError:
            pass
        return instance


def format_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """One readable line per problem: ``key.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        where = ".".join(p for p in (prefix, loc) if p)
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        shown = "" if err.get("type") in ("extra_forbidden", "missing") else f" (got {got!r})"
        lines.append(f"{where}: {msg}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _describe(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last


_default: PluginRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> PluginRegistry:
    """The process-wide registry (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginRegistry()
        return _default
