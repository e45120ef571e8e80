"""The device models' rules, sans-IO: what each ring format and its notifications mean, on plain buffers."""
