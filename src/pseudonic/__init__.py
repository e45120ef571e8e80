"""pseudonic: a pseudo-NIC that plays a real NIC's receive path for a driver under test.

>>> import pseudonic
>>> r = pseudonic.run(interval="38us", count=1000, size=1500)
>>> r.received, r.interval_deviation_ns["within_6_25pct"]
"""

from __future__ import annotations

from .controller import Session, run
from .errors import ConfigError, DriverLoadError, PseudonicError
from .nic import Driver, Nic
from .plan import Plan
from .result import RunResult

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "Driver",
    "DriverLoadError",
    "Nic",
    "Plan",
    "PseudonicError",
    "RunResult",
    "Session",
    "run",
]
