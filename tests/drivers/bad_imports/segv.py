"""A driver module that misbehaves while it is imported."""

import ctypes

ctypes.string_at(0)
