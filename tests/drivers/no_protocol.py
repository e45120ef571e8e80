"""A class that is not a driver: it has no interrupt handler."""


class NotADriver:
    def open(self, nic: object) -> None:
        pass

    def close(self, nic: object) -> None:
        pass
