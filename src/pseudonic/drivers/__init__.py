"""Reference drivers: ``python`` (:class:`pseudonic.drivers.e1000.E1000`)."""
