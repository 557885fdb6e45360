"""Exception types of pcweak. Every message names the file, field or argument at fault."""
from __future__ import annotations


class PcweakError(Exception):
    """Base class of every error pcweak raises on purpose."""


class SceneError(PcweakError, ValueError):
    """A Scene / WeakLabels / PseudoLabels field is malformed (shape, dtype, range, finiteness)."""


class ReaderError(PcweakError, ValueError):
    """A dataset file is missing, corrupt or inconsistent."""


class AddressError(PcweakError, ValueError):
    """A scene address (``DATASET:PATH``) cannot be resolved."""
