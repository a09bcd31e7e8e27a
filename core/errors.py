"""Typed exceptions.

Every error a user can cause is a subclass of :class:`ValueError` (as deepface's are), so code
written against deepface's ``except ValueError`` keeps working.  The deepface names are kept as
aliases of facepipe's own classes.

Rule for new code: a ``raise`` that user input, a config file or the environment can trigger
raises one of these classes (add one here if none fits), so the CLI prints one line and the
REST service answers 4xx instead of 500.  Pydantic validators are the exception: they raise a
plain ``ValueError``, which pydantic collects and the registry reports as :class:`ConfigError`.
Plain builtins remain for programming errors inside facepipe itself.
"""

from __future__ import annotations


class FacepipeError(ValueError):
    """Base class of all facepipe errors caused by input, configuration or environment."""


# --- image input -------------------------------------------------------------------------------
class ImageError(FacepipeError):
    """An image input could not be used."""


class ImageNotFoundError(ImageError):
    """A path does not name an existing file."""


class ImageDecodeError(ImageError):
    """Bytes could not be decoded as an image (corrupt, truncated, unsupported format)."""


class ImageTooLargeError(ImageError):
    """The input exceeds the byte or pixel limits (e.g. a decompression bomb)."""


class ImageTypeError(ImageError):
    """The input is of a kind the loader does not accept."""


class InputShapeError(ImageError):
    """An array handed to a model (e.g. a batch of face crops) has a shape the model cannot take."""


# --- detection / faces -------------------------------------------------------------------------
class FaceNotDetectedError(FacepipeError):
    """No face was found and the no-face policy is ``error``."""


class SpoofDetectedError(FacepipeError):
    """An anti-spoofing plugin judged a face to be fake."""


# --- embeddings / search -----------------------------------------------------------------------
class DimensionMismatchError(FacepipeError):
    """Embeddings of different sizes were compared."""


class InvalidEmbeddingsShapeError(FacepipeError):
    """An embedding array has an unusable shape."""


class EmptyDatasourceError(FacepipeError):
    """A folder or index holds nothing to search."""


class PathNotFoundError(FacepipeError):
    """A folder given to ``find`` does not exist."""


class IndexCorruptError(FacepipeError):
    """An index file could not be read; it will be rebuilt."""


# --- configuration and plugins -----------------------------------------------------------------
class ConfigError(FacepipeError):
    """A configuration is invalid; the message names the key path and the fix."""


class PluginError(FacepipeError):
    """A plugin could not be found, imported or built."""


class PluginNotFoundError(PluginError, ConfigError):
    """No plugin of that kind has that name (the message lists the installed choices)."""


class PluginUnavailableError(PluginError):
    """The plugin is registered but its extra is missing or its module failed to import."""


class PluginConflictError(PluginError):
    """Two distributions registered a plugin under the same name."""


# --- weights -----------------------------------------------------------------------------------
class WeightsError(FacepipeError):
    """A weight file could not be obtained or failed verification."""


class ChecksumMismatchError(WeightsError):
    """A downloaded or cached file does not have the declared size / sha256."""


class OfflineError(WeightsError):
    """Offline mode is on and a file is missing; the message says where to put it."""


class StoreError(FacepipeError):
    """A gallery store could not do what was asked (base of the store errors)."""


class StoreURLError(StoreError, ConfigError):
    """A store URL names no installed store, or is malformed."""


class StoreConnectionError(StoreError):
    """The store's server could not be reached (refused, timed out, unknown host)."""


class StoreAuthError(StoreError):
    """The store's server refused the credentials."""


class StoreMismatchError(StoreError, DimensionMismatchError):
    """Embeddings of another dimension or model fingerprint than the store holds."""


class ExtraNotInstalledError(FacepipeError):
    """An optional feature needs a package that is not installed; the message names the pip command."""


class UnimplementedError(FacepipeError):
    """A requested option does not exist (deepface name kept for compatibility)."""


# deepface's exception names, for drop-in code.
ImgNotFound = ImageNotFoundError
PathNotFound = PathNotFoundError
FaceNotDetected = FaceNotDetectedError
SpoofDetected = SpoofDetectedError
EmptyDatasource = EmptyDatasourceError
DataTypeError = ImageTypeError

__all__ = [name for name in dir() if not name.startswith("_")]
