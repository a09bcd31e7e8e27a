"""What a plugin registers: a light description, importable without any ML runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # keep this module free of pydantic/numpy: `import facepipe` must stay fast
    from facepipe.plugin_config import PluginConfig

PluginKind = Literal["detector", "recognizer", "analyzer", "metric", "antispoofer"]
KINDS: tuple[PluginKind, ...] = ("detector", "recognizer", "analyzer", "metric", "antispoofer")


@dataclass(frozen=True)
class PackageFile:
    """A weight file shipped inside an installed Python distribution.

    ``package`` is an importable top-level name found with :func:`importlib.util.find_spec`
    (the package is *not* imported); ``path`` is relative to the package folder.
    """

    package: str
    path: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class WeightFile:
    """A file a plugin needs.

    ``name`` is the file name in the cache (``$FACEPIPE_HOME/weights/<name>``); ``urls`` are tried
    in order (mirrors); ``sha256`` / ``size`` verify the file after download.  ``compression``
    ("bz2" or "zip") means the URL serves a compressed file whose content is ``name``.
    ``deepface_name`` is the name in deepface's cache, reused when its checksum fits.
    """

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    compression: Literal["bz2", "zip"] | None = None
    package_files: tuple[PackageFile, ...] = ()
    deepface_name: str | None = None
    description: str = ""


@dataclass(frozen=True)
class PluginSpec:
    """A plugin's registration record.

    ``factory`` is ``"module:Class"``; it is imported only when the plugin is built, so listing
    plugins and validating configs never imports a model runtime.  ``requires`` names the
    importable modules the factory needs (checked with ``find_spec``, without importing) and
    ``extra`` is the ``pip install facepipe[extra]`` that provides them.
    """

    kind: PluginKind
    name: str
    factory: str
    config: "type[PluginConfig]" = None  # type: ignore[assignment]  # None → an empty PluginConfig
    aliases: tuple[str, ...] = ()
    description: str = ""
    weights: tuple[WeightFile, ...] = ()
    requires: tuple[str, ...] = ()
    extra: str | None = None
    #: free-text install command when the extra alone is not enough (e.g. a --no-deps package)
    install: str | None = None
    license: str | None = None
    # Filled in by the registry:
    distribution: str | None = field(default=None, compare=False)
    version: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.config is None:
            from facepipe.plugin_config import PluginConfig

            object.__setattr__(self, "config", PluginConfig)

    @property
    def install_hint(self) -> str:
        if self.install:
            return self.install
        if self.extra:
            return f"pip install 'facepipe[{self.extra}]'"
        if self.requires:
            return "pip install " + " ".join(self.requires)
        return ""


def DetectorSpec(**kw: object) -> PluginSpec:  # noqa: N802 - reads like a class at call sites
    return PluginSpec(kind="detector", **kw)  # type: ignore[arg-type]


def RecognizerSpec(**kw: object) -> PluginSpec:  # noqa: N802
    return PluginSpec(kind="recognizer", **kw)  # type: ignore[arg-type]


def AnalyzerSpec(**kw: object) -> PluginSpec:  # noqa: N802
    return PluginSpec(kind="analyzer", **kw)  # type: ignore[arg-type]


def MetricSpec(**kw: object) -> PluginSpec:  # noqa: N802
    return PluginSpec(kind="metric", **kw)  # type: ignore[arg-type]


def AntiSpooferSpec(**kw: object) -> PluginSpec:  # noqa: N802
    return PluginSpec(kind="antispoofer", **kw)  # type: ignore[arg-type]
