"""A driver module that misbehaves while it is imported."""

import os

os._exit(0)
