"""Files a command will write, checked before it runs anything: a run is not spent to fail on its output."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def check_writable(path: str | Path, what: str) -> Path:
    """``path`` can be created or overwritten as a file; :class:`ConfigError` naming ``what`` (e.g. ``--json``)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {path}: is a directory; give a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: directory {parent} does not exist")
    if not os.access(p if p.exists() else parent, os.W_OK):
        raise ConfigError(f"{what} {path}: not writable")
    return p
