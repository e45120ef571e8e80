"""The paper's evaluations as commands: send time, precision, sweep, the kernel baseline, the report."""
