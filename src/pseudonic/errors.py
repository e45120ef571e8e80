"""The exceptions pseudonic raises on purpose."""

from __future__ import annotations


class PseudonicError(Exception):
    """Base of every error pseudonic raises on purpose."""


class ConfigError(PseudonicError, ValueError):
    """The user asked for something out of range; the message names the accepted range."""


class DriverLoadError(ConfigError):
    """The driver named on the command line cannot be imported or lacks the driver protocol."""


class MachineLimitError(ConfigError):
    """The machine cannot give what the run needs (space, descriptors, permissions).

    The message says what is short, how much, and what to change.
    """


class CoresBusyError(ConfigError):
    """Another run holds a core this run needs (see pseudonic.cores)."""


class RealtimeError(MachineLimitError):
    """A node could not become real-time (SCHED_FIFO, mlockall) as ``--rt`` asked.

    The message is one line: what was refused, and what to change (see pseudonic.realtime).
    """
