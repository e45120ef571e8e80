"""Parsing of the quantities users type: intervals and sizes; durations for people (:func:`format_ns`)."""

from __future__ import annotations

import re

from .errors import ConfigError

_TIME_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "min": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# SI prefixes are powers of ten, IEC ones powers of two: 1.5KB = 1500 B, 16KiB = 16384 B.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1_000_000,
    "mb": 1_000_000,
    "mi": 1 << 20,
    "mib": 1 << 20,
}
_NUMBER = re.compile(r"^\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([a-zA-Zµ]*)\s*$")


def parse_interval(text: str | int | float, what: str = "interval", *, signed: bool = False) -> int:
    """``"38us"`` -> 38000 (ns). Integers are taken as ns; strings need a unit.

    A negative duration is refused unless ``signed``: then the caller checks the range, so that
    its message names the range rather than calling ``-5us`` no duration.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a duration such as 38us, not {text!r}")
    if isinstance(text, (int, float)):
        ns = round(text)
    else:
        m = _NUMBER.match(text)
        unit = m.group(2).lower() if m else ""
        if m and not unit and float(m.group(1)) == 0:
            return 0  # zero needs no unit
        if not m or unit not in _TIME_UNITS:
            raise ConfigError(
                f"{what} {text!r} is not a duration: give a number and a unit of ns, us or ms (e.g. 38us)"
            )
        ns = round(float(m.group(1)) * _TIME_UNITS[unit])
    if ns < 0 and not signed:
        raise ConfigError(
            f"{what} {text!r} is out of range: give a duration of 0 or more, with a unit of ns, us or ms (e.g. 38us)"
        )
    return ns


def parse_size(text: str | int, what: str = "size", *, signed: bool = False) -> int:
    """``"1.5KB"`` -> 1500, ``"16KiB"`` -> 16384, ``1500`` -> 1500 (bytes).

    A negative size is refused unless ``signed``: then the caller checks the range and names it.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a byte count such as 1500 or 16KiB, not {text!r}")
    if isinstance(text, int):
        nbytes = text
    else:
        m = _NUMBER.match(text)
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _SIZE_UNITS:
            raise ConfigError(
                f"{what} {text!r} is not a size: give bytes, or a number with B, KB or KiB (e.g. 1500, 1.5KB, 16KiB)"
            )
        value = float(m.group(1)) * _SIZE_UNITS[unit]
        if value != int(value):
            raise ConfigError(f"{what} {text!r} is not a whole number of bytes")
        nbytes = int(value)
    if nbytes < 0 and not signed:
        raise ConfigError(f"{what} {text!r} is out of range: give 0 or more bytes (e.g. 1500, 1.5KB, 16KiB)")
    return nbytes


_RATE_UNITS = {"bps": 1, "kbps": 1_000, "mbps": 1_000_000, "gbps": 1_000_000_000}


def parse_rate(text: str | int, what: str = "rate") -> int:
    """``"10Gbps"`` -> 10_000_000_000 (bits per second). Integers are taken as bits per second."""
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a bit rate such as 10Gbps, not {text!r}")
    if isinstance(text, int):
        return text
    m = _NUMBER.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _RATE_UNITS:
        raise ConfigError(
            f"{what} {text!r} is not a bit rate: give a number with bps, kbps, Mbps or Gbps (e.g. 10Gbps)"
        )
    return round(float(m.group(1)) * _RATE_UNITS[unit])


def format_ns(ns: float, digits: int = 3) -> str:
    """A duration for people, in the unit that fits, with ``digits`` decimals (ns are whole):
    38000 -> '38.000 µs'; with ``digits=2``, 1_500_000 -> '1.50 ms'.

    The one duration formatter: the CLI, the bench's tables and report, and the figures all print
    through it, each with its own number of decimals.
    """
    a = abs(ns)
    if a >= 1e9:
        return f"{ns / 1e9:.{digits}f} s"
    if a >= 1e6:
        return f"{ns / 1e6:.{digits}f} ms"
    if a >= 1e3:
        return f"{ns / 1e3:.{digits}f} µs"
    return f"{ns:.0f} ns"
