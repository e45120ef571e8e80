"""Driver loading: from a spec to a driver, only ever in the driver node or a throw-away child.

- :mod:`.spec`: a spec on the command line (``python``, ``c``, ``module:Class``,
  ``path/to/driver.py[:Class]``, ``path/to/libdriver.so``) to a driver class or a C library,
  and :func:`probe`, which loads one in a child under a timeout;
- :mod:`.library`: a C driver library, checked by reading it (ELF, architecture, truncation)
  before anything maps it, then opened and its entry points and ABI checked (:class:`CDriver`).
"""

from __future__ import annotations

from .library import CDriver, check_library, include_dir, reference_library
from .spec import (
    check_driver_class,
    check_spec,
    driver_model,
    driver_name,
    driver_transmits,
    ended_while_loading,
    load_driver,
    probe,
    spec_of,
)

__all__ = [
    "CDriver",
    "check_driver_class",
    "check_library",
    "check_spec",
    "driver_model",
    "driver_name",
    "driver_transmits",
    "ended_while_loading",
    "include_dir",
    "load_driver",
    "probe",
    "reference_library",
    "spec_of",
]
