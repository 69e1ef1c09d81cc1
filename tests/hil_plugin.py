"""pytest plugin: choose the HIL targets, start simulated boards, skip what cannot run.

Register it with ``pytest_plugins = ["tests.hil_plugin"]`` in tests/conftest.py (or
``-p tests.hil_plugin``).

Options (or environment variables):

``--hil-target URL[,URL...]`` / ``UBPROTO_HIL_TARGET``
    Targets the shared HIL suite runs against. Default: ``model://,sim+udp://,sim+tap://``
    (a target that cannot exist here, such as sim+tap:// without root or TUN/TAP support,
    is skipped with the reason).
``--board-url URL`` / ``UBPROTO_BOARD_URL``
    A real board (``udp://...``, ``eth://...``, ``serial://...``). Adds it to the targets and
    enables tests marked ``board``; without it they are skipped.
``--hil-record FILE``
    Record the real board's traffic to FILE (CI replays it with ``replay://FILE``).
``--hil-dut NAME`` / ``UBPROTO_HIL_DUT``
    Design under test of the model and simulated targets (default ``switch``; ``lanes`` for
    the stand-in loopback).
``--hil-map FILE``
    regmap.json of the real board's bitstream (written by ``ubproto build``).

The ``hil_board`` fixture is parametrized over the targets; each test gets an open
:class:`~ubproto.platforms.hil.Board` whose state is reset (route table cleared, counters
zeroed where they can be, scratch 0) so tests do not depend on their order.
"""

import os

import pytest

DEFAULT_TARGETS = "model://,sim+udp://,sim+tap://"


def pytest_addoption(parser):
    group = parser.getgroup("hil", "hardware in the loop")
    group.addoption("--hil-target", default=os.environ.get("UBPROTO_HIL_TARGET"),
                    help=f"comma-separated target URLs for the HIL suite (default "
                         f"{DEFAULT_TARGETS})")
    group.addoption("--board-url", default=os.environ.get("UBPROTO_BOARD_URL"),
                    help="URL of a real board; enables tests marked 'board'")
    group.addoption("--hil-record", default=None,
                    help="record the real board's exchanges to this file")
    group.addoption("--hil-dut", default=os.environ.get("UBPROTO_HIL_DUT", "switch"),
                    help="design under test of model:// and the simulated boards "
                         "(switch or lanes; default switch)")
    group.addoption("--hil-map", default=None,
                    help="regmap.json of the real board (from ubproto build)")


def pytest_configure(config):
    config.addinivalue_line("markers", "board: needs a real FPGA board (skipped unless "
                                       "--board-url is given)")
    config.addinivalue_line("markers", "hil: runs against every HIL target")


def hil_targets(config):
    targets = [t for t in (config.getoption("--hil-target") or DEFAULT_TARGETS).split(",") if t]
    board = config.getoption("--board-url")
    if board and board not in targets:
        targets.append(board)
    return targets


def pytest_generate_tests(metafunc):
    if "hil_target" in metafunc.fixturenames:
        targets = hil_targets(metafunc.config)
        metafunc.parametrize("hil_target", targets, ids=[t.split("?")[0] for t in targets],
                             scope="session")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--board-url"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --board-url URL "
                                   "(or set UBPROTO_BOARD_URL)")
    for item in items:
        if "board" in item.keywords:
            item.add_marker(skip)


_open_boards = {}


@pytest.fixture(scope="session")
def hil_session_board(hil_target, request):
    """One open board per target for the whole session (simulated boards start once)."""
    from ubproto.platforms.hil import open_board
    from ubproto.platforms.hil.transports import TargetUnavailable

    if hil_target not in _open_boards:
        record, kwargs = None, {"dut": request.config.getoption("--hil-dut")}
        if hil_target == request.config.getoption("--board-url"):
            record = request.config.getoption("--hil-record")
            kwargs = {"regmap": request.config.getoption("--hil-map")}
        try:
            _open_boards[hil_target] = open_board(hil_target, record=record, **kwargs)
        except TargetUnavailable as exc:
            pytest.skip(f"{hil_target}: {exc}")
    yield _open_boards[hil_target]


def pytest_sessionfinish(session, exitstatus):
    while _open_boards:
        _, board = _open_boards.popitem()
        board.close()


@pytest.fixture(scope="session")
def real_board(request):
    """The real board named by --board-url (tests using it are marked ``board``)."""
    from ubproto.platforms.hil import open_board
    url = request.config.getoption("--board-url")
    if not url:
        pytest.skip("needs a real board: pass --board-url URL")
    if url not in _open_boards:
        _open_boards[url] = open_board(url, record=request.config.getoption("--hil-record"),
                                       regmap=request.config.getoption("--hil-map"))
    return _open_boards[url]


@pytest.fixture
def hil_board(hil_session_board):
    """The session's board for this target, reset to a known state."""
    from ubproto.platforms.hil.checks import reset_board
    reset_board(hil_session_board)
    return hil_session_board
