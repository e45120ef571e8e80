"""A driver module that misbehaves while it is imported."""

import sys

sys.exit(3)
