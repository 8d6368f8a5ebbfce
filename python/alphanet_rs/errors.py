"""Exceptions raised by alphanet_rs.

Every engine error is an :class:`AlphaNetError` carrying the message the ``alphanet`` command
line prints after ``error:``. The subclasses also derive from the matching built-in exception, so
``except ValueError`` catches bad arguments and bad data alike.
"""


class AlphaNetError(Exception):
    """Base class of every error the engine reports."""


class ConfigError(AlphaNetError, ValueError):
    """A bad argument or combination of arguments (the CLI's bad-flag errors)."""


class DataError(AlphaNetError, ValueError):
    """Data that leaves nothing to work on: no samples, dates out of range, NaN-only input."""


class PanelError(AlphaNetError):
    """A panel directory that is missing files or whose files disagree with meta.json."""


class CheckpointError(AlphaNetError):
    """A checkpoint directory that cannot be read, or does not fit the panel."""


class OutputExistsError(AlphaNetError, FileExistsError):
    """An output path that already exists (outputs are never overwritten)."""


class AlphaNetIOError(AlphaNetError, OSError):
    """A file that cannot be read or written."""


class CudaError(AlphaNetError, RuntimeError):
    """A CUDA device that cannot be used."""


__all__ = [
    "AlphaNetError",
    "ConfigError",
    "DataError",
    "PanelError",
    "CheckpointError",
    "OutputExistsError",
    "AlphaNetIOError",
    "CudaError",
]
