"""A driver module that misbehaves while it is imported."""

while True:
    pass
