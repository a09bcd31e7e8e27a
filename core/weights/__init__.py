"""Weight files: where they are cached, how they are found in installed packages, downloaded and verified.

Stands directly on the kernel's plain records (``facepipe.specs``, ``facepipe.errors``); plugins get a
:class:`WeightsManager` from the registry that builds them.
"""

from facepipe.weights.manager import *  # noqa: F401,F403 - the public names of the weights layer
from facepipe.weights.manager import __all__  # noqa: F401
