"""pytest configuration shared by the whole suite."""

# Target selection for the hardware-in-the-loop suite (--board-url / $UBPROTO_BOARD_URL).
pytest_plugins = ["hil_plugin"]
