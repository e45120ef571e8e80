"""Profiles: a setting a kind of driver is written for, named once, for ``run`` and ``check-driver``.

``xv6-lab`` is the network lab of MIT's xv6 course (6.1810), where students write an e1000 driver
for QEMU's 82540EM: 16 descriptors each way, 2048-byte buffers (RCTL.BSIZE 2048), an interrupt on
every received frame (IMS = RXT0, RDTR = 0), the FCS stripped (RCTL.SECRC), small UDP frames,
the PLIC's level-triggered line. Its checks send and receive many frames in a row, more frames
than there are descriptors, and transmit while receiving; this profile's conformance cases are
modelled on those (:data:`XV6_CASES` in :mod:`pseudonic.conformance`).

A profile sets the options a user did not give; what a user gives wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    #: one line for --help and the summary
    summary: str
    #: run's keyword arguments (pseudonic.run's names) the profile sets
    run: dict[str, Any] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "xv6-lab": Profile(
        "xv6-lab",
        "xv6's network lab: 16 descriptors, 2048 B buffers, level line, 100 small frames each way",
        {
            "ring_size": 16,
            "buffer_size": 2048,
            "irq_mode": "level",
            "size": 60,
            "count": 100,
            "interval": "100us",
            "transmit": 100,
        },
    ),
}


def profile(name: str) -> Profile:
    """The profile named ``name``; :class:`ConfigError` naming the ones there are."""
    if name not in PROFILES:
        raise ConfigError(f"profile {name!r} is unknown: give one of {', '.join(PROFILES)}")
    return PROFILES[name]


__all__ = ["PROFILES", "Profile", "profile"]
