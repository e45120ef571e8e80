"""The reference driver, noting each time its module is imported (a load) in the file $PSEUDONIC_TEST_LOADS."""

from __future__ import annotations

import os

from pseudonic.drivers.e1000 import E1000

with open(os.environ["PSEUDONIC_TEST_LOADS"], "a") as _loads:
    _loads.write(f"{os.getpid()}\n")


class CountedE1000(E1000):
    name = "counted"
