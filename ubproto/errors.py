"""Exceptions that carry a message meant for the user, not a traceback."""


class UbprotoError(Exception):
    """A user-facing error: the CLI prints its message and exits non-zero, without a traceback.

    Raise it (or a subclass) for anything a user can fix: a bad parameter, a malformed file,
    a missing tool. Keep the message one or two lines that say what is wrong and how to fix it.
    """


class ConfigError(UbprotoError, ValueError):
    """A parameter or experiment description is invalid."""


class ToolchainError(UbprotoError):
    """A required external tool (Verilator, Yosys, nextpnr, ...) is missing or unusable."""


class MalformedPacket(UbprotoError, ValueError):
    """A byte string is not a valid UB-style frame; ``reason`` names the error class."""

    def __init__(self, reason, detail):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
