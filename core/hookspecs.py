"""pluggy hook specifications.

A plugin module (the target of an entry point in the ``facepipe`` group) implements one or
more of these hooks with :data:`facepipe.hookimpl`.  Each hook receives a ``register`` callable;
call it once per plugin with a :class:`facepipe.specs.PluginSpec`::

    from facepipe import hookimpl
    from facepipe.specs import DetectorSpec

    @hookimpl
    def facepipe_register_detectors(register):
        register(DetectorSpec(name="mine", factory="my_pkg.detector:MyDetector", config=MyConfig))

Keep the module light: import heavy libraries inside the factory class, not at module level.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from facepipe.specs import PluginSpec

PROJECT_NAME = "facepipe"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[PluginSpec], None]


@hookspec
def facepipe_register_detectors(register: Register) -> None:
    """Register face detectors (kind ``detector``)."""


@hookspec
def facepipe_register_recognizers(register: Register) -> None:
    """Register recognition models that turn faces into embeddings (kind ``recognizer``)."""


@hookspec
def facepipe_register_analyzers(register: Register) -> None:
    """Register facial attribute analyzers such as age or emotion (kind ``analyzer``)."""


@hookspec
def facepipe_register_metrics(register: Register) -> None:
    """Register distance metrics between embeddings (kind ``metric``)."""


@hookspec
def facepipe_register_stores(register: Register) -> None:
    """Register gallery stores that keep face embeddings and search them (kind ``store``).

    A store declares the URL schemes it opens (:class:`facepipe.specs.StoreSpec`); its class
    implements :class:`facepipe.types.Store`.
    """


@hookspec
def facepipe_register_antispoofers(register: Register) -> None:
    """Register anti-spoofing models that tell real faces from photos/screens (kind ``antispoofer``).

    Built in: ``Fasnet`` (deepface's MiniFASNets); a pipeline uses one when its config names it
    under ``anti_spoofing``.
    """
