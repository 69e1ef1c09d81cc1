"""One HIL test suite, every target: model://, sim+udp://, sim+tap:// (and a real board).

The target list comes from tests/hil_plugin.py (``--hil-target``, ``--board-url``). Each test
only talks to the Board API, so what passes here against the model and the simulated boards
is what runs on the bench. ``test_targets_agree`` checks that every target gives the same
answers for the same session.
"""

import pytest

from ubproto.hdl.host.core import IDENT
from ubproto.hdl.host.protocol import Command, Op, Status, bridge_cycles
from ubproto.hdl.switch.ingress import SWITCH_DROP_REASONS
from ubproto.hdl.switch.packets import ecmp_group_writes, route_entry_value
from ubproto.platforms.hil.checks import (HOST_ADDRESS, counter_delta, dut_kind, make_packet,
                                          make_switch_packet, route_table, swapped_addresses,
                                          switch_clear_test, traffic_test)
from ubproto.platforms.hil.client import BridgeError

pytestmark = pytest.mark.hil
UNKNOWN = list(SWITCH_DROP_REASONS).index("unknown_destination")
MALFORMED = list(SWITCH_DROP_REASONS).index("malformed")


def _switch_only(board):
    if dut_kind(board) != "switch":
        pytest.skip("the design under test is not the switch (--hil-dut switch)")


def _route(board, dcna, port):
    board.write_table("switch.route", [route_entry_value(port)], start=dcna)


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
    table = route_table(hil_board)
    entries = hil_board.regmap.register(table).count
    values = [(i * 7) % 3 for i in range(entries)]
    hil_board.write_table(table, values)
    assert hil_board.read_array(table) == values
    hil_board.write_table(table, [2, 1], start=4)
    values[4:6] = [2, 1]
    assert hil_board.read_array(table) == values


def test_packets_through_the_design_and_counters(hil_board):
    result = traffic_test(hil_board, packets=12)
    assert result["ok"], result["checks"]


def test_unrouted_packet_is_dropped_and_counted(hil_board):
    if dut_kind(hil_board) == "switch":
        before = hil_board.counters("switch")
        hil_board.send(0, make_switch_packet(dcna=3, index=0))
        assert hil_board.receive(0, timeout=0.3) is None
        delta = counter_delta(before, hil_board.counters("switch"))
        assert delta["drops"][UNKNOWN] == 1 and sum(delta["drops"]) == 1
        assert sum(delta["packets_in"]) == 0
        return
    hil_board.send(0, make_packet(lbf=3, index=0))
    assert hil_board.receive(0, timeout=0.3) is None
    assert hil_board.read("lanes.rx_drops") == 1


def test_exec_cycles_match_the_documented_costs(hil_board):
    cmds = [Command(Op.BURST_READ, hil_board.regmap.address("sys.ident"), 4)]
    hil_board.client.run(cmds)
    measured = hil_board.read("bridge.exec_cycles")
    assert measured == bridge_cycles(cmds)


# --- the switch as design under test ---------------------------------------------------------

def test_switch_shape_registers_match_the_map(hil_board):
    _switch_only(hil_board)
    rm = hil_board.regmap
    ports = hil_board.read("switch.cfg_ports")
    nv = hil_board.read("switch.cfg_num_vls")
    assert rm.register("switch.route").count == hil_board.read("switch.cfg_route_entries")
    assert rm.register("switch.packets_in").count == ports * nv
    assert rm.register("switch.drops").count == ports * len(SWITCH_DROP_REASONS)
    assert rm.register("dataplane.reflected").count == ports - 1
    # The SL->VL table reads back the switch's reset mapping (SL mod VLs).
    assert hil_board.read_array("switch.sl_to_vl") == [sl % nv for sl in range(16)]


def test_switch_route_change_at_run_time(hil_board):
    """The same destination hairpins on port 0, then (route rewritten) goes out of port 1 and
    comes back through its reflector with the addresses swapped; then is dropped."""
    _switch_only(hil_board)
    _route(hil_board, HOST_ADDRESS, 0)
    pkt = make_switch_packet(dcna=5, index=1, size=50)
    _route(hil_board, 5, 0)
    before = hil_board.counters("switch")
    hil_board.send(0, pkt)
    assert hil_board.receive(0, timeout=2.0, raw=True) == pkt
    _route(hil_board, 5, 1)
    hil_board.send(0, pkt)
    assert hil_board.receive(0, timeout=2.0, raw=True) == swapped_addresses(pkt)
    hil_board.write_table("switch.route", [0], start=5)       # route removed
    hil_board.send(0, pkt)
    assert hil_board.receive(0, timeout=0.3, raw=True) is None
    d = counter_delta(before, hil_board.counters("switch"))
    nv = hil_board.read("switch.cfg_num_vls")
    assert d["packets_in"][0 * nv + 0] == 2 and d["packets_in"][1 * nv + 0] == 1
    assert d["packets_out"][0 * nv + 0] == 2 and d["packets_out"][1 * nv + 0] == 1
    assert d["bytes_out"][0] == 2 * len(pkt)
    assert d["grants"][:2] == [2, 1]
    assert d["drops"][UNKNOWN] == 1


def test_switch_sl_to_vl_table_selects_the_vl(hil_board):
    _switch_only(hil_board)
    nv = hil_board.read("switch.cfg_num_vls")
    if nv < 2:
        pytest.skip("one VL")
    _route(hil_board, 6, 0)
    hil_board.write_table("switch.sl_to_vl", [nv - 1], start=2)
    before = hil_board.counters("switch")
    pkt = make_switch_packet(dcna=6, index=2, sl=2, size=30)
    hil_board.send(0, pkt)
    assert hil_board.receive(0, timeout=2.0, raw=True) == pkt
    d = counter_delta(before, hil_board.counters("switch"))
    assert d["packets_out"][nv - 1] == 1 and d["packets_out"][0] == 0
    assert d["occupancy_max"][nv - 1] >= 0 and d["packets_in"][nv - 1] == 1


def test_switch_malformed_host_packets_are_counted_drops(hil_board):
    """Too short for LPH + NTH16, or a UBoE shim version the board does not speak: dropped and
    counted, never answered; a good packet after them still goes through."""
    _switch_only(hil_board)
    _route(hil_board, 7, 0)
    before, dp_before = hil_board.counters("switch"), hil_board.counters("dataplane")
    good = make_switch_packet(dcna=7, index=3, size=40)
    hil_board.send(0, good[:9])                                   # cut inside NTH16
    bad_version = bytes([0x10 | good[0] & 0x0F]) + good[1:]
    hil_board.send(0, bad_version)
    assert hil_board.receive(0, timeout=0.3) is None
    hil_board.send(0, good)
    assert hil_board.receive(0, timeout=2.0, raw=True) == good
    d = counter_delta(before, hil_board.counters("switch"))
    dp = counter_delta(dp_before, hil_board.counters("dataplane"))
    assert d["drops"][MALFORMED] == 1 and sum(d["drops"]) == 1
    assert dp["host_drops_version"] == 1
    assert dp["host_rx_packets"] == 2 and dp["host_tx_packets"] == 1


def test_switch_counters_clear(hil_board):
    """Traffic, ``switch.clear_counters``, zeros, traffic again, exact counts (every target)."""
    _switch_only(hil_board)
    result = switch_clear_test(hil_board, packets=8)
    assert result["ok"], (result["checks"], result["nonzero_after_clear"], result["exact"])


def test_switch_config_reads_back_what_the_switch_uses(hil_board):
    """Values the switch would not use are refused (ERR_ADDRESS) and the read-back keeps the
    value in use; values in range are taken."""
    _switch_only(hil_board)
    top = hil_board.read("switch.allocator_iterations")
    width = hil_board.regmap.register("switch.allocator_iterations").width
    for bad in sorted({0, top + 1, (1 << width) - 1} - set(range(1, top + 1))):
        if bad >= 1 << width:
            continue                     # the host library refuses it before sending
        with pytest.raises(BridgeError) as info:
            hil_board.write("switch.allocator_iterations", bad)
        assert info.value.status == Status.ERR_ADDRESS
        assert hil_board.read("switch.allocator_iterations") == top
    hil_board.write("switch.allocator_iterations", 1)
    assert hil_board.read("switch.allocator_iterations") == 1
    hil_board.write("switch.allocator_iterations", top)
    max_paths = hil_board.read("switch.cfg_ecmp_max_paths")
    size = hil_board.regmap.register("switch.ecmp_size")
    if max_paths + 1 < 1 << size.width:
        write = (lambda v: hil_board.write_table("switch.ecmp_size", [v], start=0)) \
            if size.count > 1 else (lambda v: hil_board.write("switch.ecmp_size", v))
        with pytest.raises(BridgeError):
            write(max_paths + 1)
        read = hil_board.read_array("switch.ecmp_size") if size.count > 1 else \
            [hil_board.read("switch.ecmp_size")]
        assert read[0] == 0
    # The switch still forwards after refused writes.
    assert traffic_test(hil_board, packets=4)["ok"]


def _agree_session_switch(board):
    """Routes (direct, reflected, ECMP), SL->VL, a drop: what every target must agree on."""
    ports = board.read("switch.cfg_ports")
    max_paths = board.read("switch.cfg_ecmp_max_paths")
    _route(board, HOST_ADDRESS, 0)
    for dcna in (1, 2, 3):
        _route(board, dcna, dcna % ports)
    group = [p for p in range(min(ports, max_paths))]
    for table, addr, value in ecmp_group_writes(1, group, max_paths):
        name = {2: "ecmp_size", 3: "ecmp_member"}[int(table)]
        board.write_table(f"switch.{name}", [value], start=addr) \
            if board.regmap.register(f"switch.{name}").count > 1 \
            else board.write(f"switch.{name}", value)
    board.write_table("switch.route", [route_entry_value(1, ecmp=True)], start=4)
    board.write_table("switch.sl_to_vl", [1 % board.read("switch.cfg_num_vls")], start=1)
    before, dp_before = board.counters("switch"), board.counters("dataplane")
    got = []
    for i in range(10):
        pkt = make_switch_packet(dcna=1 + i % 5, index=i, sl=i % 2, lbf=17 * i, size=20 + 11 * i)
        board.send(0, pkt)
        # DCNA 5 has no route: dropped (a short wait proves nothing came back).
        got.append(board.receive(0, timeout=0.3 if i % 5 == 4 else 2.0, raw=True))
    return (counter_delta(before, board.counters("switch")),
            counter_delta(dp_before, board.counters("dataplane")), got)


_session_results = {}


def test_targets_agree(hil_board, hil_target):
    """Every target gives identical answers to the same deterministic session."""
    hil_board.write("sys.scratch", 0xA5A5)
    if dut_kind(hil_board) == "switch":
        snapshot = _agree_session_switch(hil_board)
        assert sum(snapshot[0]["packets_out"]) > 10     # some went round through a reflector
    else:
        hil_board.write_table("lanes.route", [1, 2, 2, 1])
        for i in range(6):
            hil_board.send(0, make_packet(lbf=i % 4, index=i, size=40 + 9 * i))
            hil_board.receive(0, timeout=2.0)
        snapshot = (hil_board.counters("lanes"), hil_board.read_array("lanes.route"))
    snapshot = (snapshot, hil_board.read("sys.scratch"))
    _session_results[hil_target] = snapshot
    first = next(iter(_session_results.values()))
    assert snapshot == first, f"{hil_target} disagrees with the first target"


@pytest.mark.board
def test_real_board_traffic(real_board):
    assert traffic_test(real_board, packets=64)["ok"]


# --- link-layer ports (dut switch-links: --hil-dut switch-links) ------------------------------
# The same two checks run in every CI run on a simulated scale-up board of their own
# (test_link_ports_on_the_simulated_scale_up_board), whatever --hil-dut says.

def _first_link(value):
    """The first link port's entry of a ``links`` register (a list with several ports)."""
    return value[0] if isinstance(value, list) else value


def _has_link_ports(board):
    return "links" in {b.name for b in board.regmap.blocks}


def _check_link_ports_carry_packets(board):
    links = board.regmap.register("links.state").count
    assert board.read_array("links.state") == [3] * links if links > 1 else \
        board.read("links.state") == 3
    result = traffic_test(board, packets=8)
    assert result["ok"], result["checks"]
    # The pin PHY runs and lost nothing on the wire (its loss counters are registers too).
    from ubproto.platforms.designs.pinlink import PinState
    pins = board.counters("links")
    assert _first_link(pins["pin_state"]) == PinState.RUN
    for name in ("pin_overflows", "pin_misframes", "pin_underflows"):
        assert _first_link(pins[name]) == 0, (name, pins[name])


def _check_link_retries_through_bit_errors(board):
    from ubproto.hdl.fault.injector import probability_threshold
    name = "links.error_threshold[0]" if board.regmap.register(
        "links.error_threshold").count > 1 else "links.error_threshold"
    before = board.counters("links")
    board.write(name, probability_threshold(0.02))
    try:
        result = traffic_test(board, packets=8, timeout=5.0)
    finally:
        board.write(name, 0)
    after = board.counters("links")
    assert result["ok"], result["checks"]
    assert _first_link(after["rx_bad_crc"]) > _first_link(before["rx_bad_crc"])
    assert _first_link(after["tx_replayed_blocks"]) > _first_link(before["tx_replayed_blocks"])


def test_link_ports_come_up_and_carry_packets(hil_board):
    if not _has_link_ports(hil_board):
        pytest.skip("the design under test has no link ports (--hil-dut switch-links)")
    _check_link_ports_carry_packets(hil_board)


def test_link_port_retries_through_bit_errors(hil_board, hil_target):
    """Bit errors injected on the looped pin link: CRC30 catches them, link-level retry
    replays, and every packet still returns intact and exactly once (RTL only: the model
    has no channel)."""
    if not _has_link_ports(hil_board):
        pytest.skip("the design under test has no link ports (--hil-dut switch-links)")
    if hil_target.startswith(("model", "replay")):
        pytest.skip("the Python model has no physical channel to corrupt")
    _check_link_retries_through_bit_errors(hil_board)


def test_link_ports_on_the_simulated_scale_up_board():
    """The scale-up design under test (switch + a link-layer port over the looped pin PHY
    + fault injector) as a Verilator board on sim+udp://: the link comes up, carries
    packets, and recovers injected bit errors by retry."""
    from ubproto.platforms.hil import open_board
    from ubproto.platforms.hil.checks import reset_board
    board = open_board("sim+udp://", dut="switch-links")
    try:
        assert _has_link_ports(board)
        reset_board(board)
        _check_link_ports_carry_packets(board)
        reset_board(board)
        _check_link_retries_through_bit_errors(board)
    finally:
        board.close()


def test_cli_reports_a_value_that_does_not_fit_without_a_traceback(capsys):
    """A user's mistake on the command line (a value wider than the register, more table
    entries than the table has) is a one-line error and exit status 1, not a traceback."""
    from ubproto.cli import main
    assert main(["hil", "--target", "model://", "--traffic", "0",
                 "--write", "switch.allocator_iterations=9"]) == 1
    err = capsys.readouterr().err
    assert "does not fit" in err and "Traceback" not in err
    assert main(["hil", "--target", "model://", "--traffic", "0",
                 "--table", "switch.sl_to_vl=" + ",".join(["0"] * 40)]) == 1
    err = capsys.readouterr().err
    assert "do not fit" in err and "Traceback" not in err
