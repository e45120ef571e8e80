"""pseudonic."""
