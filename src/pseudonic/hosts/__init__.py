"""The driver node: the process that hosts the driver under test, loaded once for run after run.

- :mod:`.node`: the node's life: load the driver once, then for each run map its segment, host
  the driver on it, report, and unmap;
- :mod:`.host_plan`: what a host is given for one run (:class:`HostPlan`), whatever the driver's kind;
- :mod:`.python_host`, :mod:`.c_host`: one host per kind of driver: a Python class, a C library.
"""

from __future__ import annotations

from .host_plan import DriverFailed, HostPlan, NodeRun, Reporter
from .node import driver_node

__all__ = ["DriverFailed", "HostPlan", "NodeRun", "Reporter", "driver_node"]
