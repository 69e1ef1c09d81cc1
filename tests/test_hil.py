"""One HIL test suite, every target: model://, sim+udp://, sim+tap:// (and a real board).

The target list comes from tests/hil_plugin.py (``--hil-target``, ``--board-url``). Each test
only talks to the Board API, so what passes here against the model and the simulated boards
is what runs on the bench. ``test_targets_agree`` checks that every target gives the same
answers for the same session.
"""

import pytest

from ubproto.hdl.host.core import IDENT
from ubproto.hdl.host.protocol import Command, Op, Status, bridge_cycles
from ubproto.platforms.hil.checks import make_packet, traffic_test
from ubproto.platforms.hil.client import BridgeError

pytestmark = pytest.mark.hil


def test_identity(hil_board):
    assert hil_board.read("sys.ident") == IDENT
    assert hil_board.read("sys.map_id") == hil_board.regmap.map_id


def test_csr_round_trips(hil_board):
    for value in (0, 1, 0xDEADBEEF, 0xFFFFFFFF, 0x12345678):
        hil_board.write("sys.scratch", value)
        assert hil_board.read("sys.scratch") == value


def test_read_only_and_missing_registers_are_refused(hil_board):
    with pytest.raises(BridgeError) as info:
        hil_board.write("sys.ident", 5)
    assert info.value.status == Status.ERR_ADDRESS
    assert hil_board.read("sys.ident") == IDENT
    hole = max(hil_board.regmap.bases[b.name] + (1 << b.span_bits)
               for b in hil_board.regmap.blocks)
    with pytest.raises(BridgeError):
        hil_board.read_burst(hole, 1)
    # The bridge keeps serving after an error.
    hil_board.write("sys.scratch", 7)
    assert hil_board.read("sys.scratch") == 7


def test_burst_read_of_many_counters_is_one_round_trip(hil_board):
    before = hil_board.client.stats["requests"]
    names = [f"{b.name}.{r.name}" for b in hil_board.regmap.blocks for r in b.registers
             if r.access == "ro" and r.count == 1]
    # 100 reads, most of them repeats of the same counters: still one frame.
    names = (names * (100 // len(names) + 1))[:100]
    values = hil_board.read_many(names)
    assert len(values) == 100
    assert hil_board.client.stats["requests"] - before == 1
    assert values[names.index("sys.ident")] == IDENT


def test_batched_frame_splits_at_the_buffer_limit(hil_board):
    addr = hil_board.regmap.address("sys.scratch")
    hil_board.write("sys.scratch", 42)
    before = hil_board.client.stats["requests"]
    words = hil_board.client.run([Command(Op.READ, addr, 1000)])[0]
    assert words == [42] * 1000
    per_frame = (hil_board.client.max_response - 10) // 4
    assert hil_board.client.stats["requests"] - before == -(-1000 // min(per_frame, 255))


def test_table_programming(hil_board):
    entries = hil_board.regmap.register("lanes.route").count
    values = [(i * 7) % 3 for i in range(entries)]
    hil_board.write_table("lanes.route", values)
    assert hil_board.read_array("lanes.route") == values
    hil_board.write_table("lanes.route", [2, 1], start=4)
    values[4:6] = [2, 1]
    assert hil_board.read_array("lanes.route") == values


def test_packets_through_the_design_and_counters(hil_board):
    result = traffic_test(hil_board, packets=12)
    assert result["ok"], result["checks"]


def test_unrouted_packet_is_dropped_and_counted(hil_board):
    hil_board.send(0, make_packet(lbf=3, index=0))
    assert hil_board.receive(0, timeout=0.3) is None
    assert hil_board.read("lanes.rx_drops") == 1


def test_exec_cycles_match_the_documented_costs(hil_board):
    cmds = [Command(Op.BURST_READ, hil_board.regmap.address("sys.ident"), 4)]
    hil_board.client.run(cmds)
    measured = hil_board.read("bridge.exec_cycles")
    assert measured == bridge_cycles(cmds)


_session_results = {}


def test_targets_agree(hil_board, hil_target):
    """Every target gives identical answers to the same deterministic session."""
    hil_board.write_table("lanes.route", [1, 2, 2, 1])
    hil_board.write("sys.scratch", 0xA5A5)
    for i in range(6):
        hil_board.send(0, make_packet(lbf=i % 4, index=i, size=40 + 9 * i))
        hil_board.receive(0, timeout=2.0)
    counters = hil_board.counters("lanes")
    route = hil_board.read_array("lanes.route")
    snapshot = (counters, route, hil_board.read("sys.scratch"))
    _session_results[hil_target] = snapshot
    first = next(iter(_session_results.values()))
    assert snapshot == first, f"{hil_target} disagrees with the first target"


@pytest.mark.board
def test_real_board_traffic(real_board):
    assert traffic_test(real_board, packets=64)["ok"]
