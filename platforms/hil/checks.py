"""Checks any target can run: identity, counters, a short traffic test, CSR rate.

Shared by ``ubproto hil``, the HIL test suite and ``benchmarks/hil_csr_rate.py``, so that
what a user runs on the bench is what CI runs against the model and the simulated boards.
"""

import time

from ...hdl.host.protocol import (COMMAND_BYTES, REQUEST_BYTES, RESPONSE_BYTES, WORD_BYTES,
                                  Command, Op, bridge_cycles)
from ...hdl.proto.scapy_layers import CTPH, NTH16, UBoE

__all__ = ["traffic_test", "onboard_traffic_test", "csr_rate", "make_packet",
           "real_board_estimate", "make_switch_packet", "switch_traffic_test", "dut_kind",
           "route_table", "reset_board", "swapped_addresses", "counter_delta",
           "switch_clear_test", "HOST_ADDRESS"]

#: The host's own compact network address in the switch tests (routed to switch port 0).
HOST_ADDRESS = 0


def make_packet(lbf, index, size=64):
    """A UB-over-UDP payload (UBoE shim + CTPH + bytes) whose route key is ``lbf``."""
    body = bytes((index + i) & 0xFF for i in range(max(0, size - 5)))
    return bytes(UBoE(lbf=lbf) / CTPH() / body)


def dut_kind(board):
    """``"switch"`` or ``"lanes"``: which design under test the board's map has."""
    names = {b.name for b in board.regmap.blocks}
    return "switch" if "switch" in names else "lanes"   # switch-links has the switch block


def route_table(board):
    """Full name of the design under test's route table."""
    return "switch.route" if dut_kind(board) == "switch" else "lanes.route"


def reset_board(board):
    """A known state: routes empty, SL->VL and ECMP at reset, counters zeroed, scratch 0.

    (The switch's counters are cleared through ``switch.clear_counters``; the ``dataplane``
    block's counters cannot be, so tests compare those before and after.)"""
    if dut_kind(board) == "switch":
        nv = board.read("switch.cfg_num_vls")
        sls = board.regmap.register("switch.sl_to_vl").count
        for name in ("route", "ecmp_size", "ecmp_member"):
            reg = board.regmap.register(f"switch.{name}")
            if reg.count > 1:
                board.write_table(f"switch.{name}", [0] * reg.count)
            else:
                board.write(f"switch.{name}", 0)
        board.write_table("switch.sl_to_vl", [sl % nv for sl in range(sls)])
        board.write("switch.clear_counters", 1)
    else:
        table = board.regmap.register("lanes.route").count
        board.write_table("lanes.route", [0] * table)
        board.write("lanes.clear", 1)
    board.write("sys.scratch", 0)


def make_switch_packet(dcna, index, *, scna=HOST_ADDRESS, sl=0, lbf=0, size=64):
    """A UB-over-UDP payload for the switch dut: UBoE shim | NTH16 | CTPH | bytes.

    The shim carries the NTH16's NLP and LBF (what the board writes on packets it returns),
    so a packet hairpinned through switch port 0 comes back byte for byte."""
    nth = NTH16(scna=scna, dcna=dcna, sl=sl, lbf=lbf)
    body = bytes((index + i) & 0xFF for i in range(max(0, size - 13)))
    return bytes(UBoE(nlp=nth.nlp, lbf=lbf)) + bytes(nth / CTPH() / body)


def swapped_addresses(packet):
    """``packet`` with NTH16 SCNA and DCNA swapped (what a reflector port returns)."""
    p = bytearray(packet)
    p[4:6], p[6:8] = bytes(packet[6:8]), bytes(packet[4:6])
    return bytes(p)


def counter_delta(before, after):
    """Per-register difference of two ``board.counters`` snapshots (lists element-wise)."""
    out = {}
    for name, value in after.items():
        if isinstance(value, list):
            out[name] = [(a - b) & 0xFFFFFFFF for a, b in zip(value, before[name])]
        else:
            out[name] = (value - before[name]) & 0xFFFFFFFF
    return out


def _as_list(value):
    return value if isinstance(value, list) else [value]


def switch_traffic_test(board, *, packets=16, timeout=2.0):
    """The switch dut's traffic test: routes programmed so that destination ``d`` leaves on
    port ``d % ports`` (port 0: straight back; port k: back through reflector k, SCNA and
    DCNA swapped), the last route entry left empty; per packet the service level changes
    (so both VLs are used). Checks every returned packet and every counter's change."""
    from ...hdl.switch.ingress import SWITCH_DROP_REASONS
    ports, entries, routes = _switch_routes(board)
    nv = board.read("switch.cfg_num_vls")
    max_bytes = board.read("switch.cfg_max_packet_flits") * 20
    reasons = list(SWITCH_DROP_REASONS)
    sl_to_vl = board.read_array("switch.sl_to_vl")
    before = board.counters("switch")
    dp_before = board.counters("dataplane")
    expect_in = [[0] * nv for _ in range(ports)]
    expect_out = [[0] * nv for _ in range(ports)]
    bytes_out = [[0] * nv for _ in range(ports)]
    reflected = [0] * (ports - 1)
    drops, matches, returned, host_bytes = 0, [], 0, 0
    for i in range(packets):
        dcna = 1 + (i * 7) % (entries - 1)
        sl = i % 4
        size = 13 + (i * 37) % (max_bytes - 13)
        pkt = make_switch_packet(dcna, i, sl=sl, lbf=i & 0xFF, size=size)
        board.send(0, pkt)
        vl = sl_to_vl[sl]
        if dcna not in routes:
            drops += 1
            continue
        port = routes[dcna]
        expected = pkt
        expect_in[0][vl] += 1
        expect_out[port][vl] += 1
        bytes_out[port][vl] += len(pkt)
        if port:
            reflected[port - 1] += 1
            expect_in[port][vl] += 1
            expect_out[0][vl] += 1
            bytes_out[0][vl] += len(pkt)
            expected = swapped_addresses(pkt)
        got = board.receive(0, timeout=timeout, raw=True)
        returned += got is not None
        host_bytes += len(expected)
        matches.append(got == expected)
    d = counter_delta(before, board.counters("switch"))
    dp = counter_delta(dp_before, board.counters("dataplane"))
    flat = lambda rows: [v for row in rows for v in row]
    drop_expect = [0] * (ports * len(reasons))
    drop_expect[reasons.index("unknown_destination")] = drops
    checks = {
        "packets_returned": all(matches) and len(matches) == packets - drops,
        "packets_in": d["packets_in"] == flat(expect_in),
        "packets_out": d["packets_out"] == flat(expect_out),
        "bytes_out": d["bytes_out"] == flat(bytes_out),
        "drops": d["drops"] == drop_expect,
        "occupancy_drained": all(v == 0 for v in _as_list(board.counters("switch")["occupancy"])),
        "host_rx_packets": dp["host_rx_packets"] == packets,
        "host_tx_packets": dp["host_tx_packets"] == packets - drops,
        "host_tx_bytes": dp["host_tx_bytes"] == host_bytes,
        "reflected": _as_list(dp["reflected"]) == reflected,
    }
    return {"ok": all(checks.values()), "checks": checks, "counters": d, "sent": packets,
            "returned": returned, "expected_drops": drops, "expected_reflected": reflected}


def switch_clear_test(board, *, packets=8, timeout=2.0):
    """``switch.clear_counters``: traffic, clear, every counter of the block reads 0, traffic
    again, and every counter then reads *exactly* what that second traffic test expects
    (absolute values, not differences)."""
    from ...hdl.switch.counters import counter_map
    names = [name for name, _, _ in counter_map(1, 1)]       # the block's counters (not cfg_*)
    first = switch_traffic_test(board, packets=packets, timeout=timeout)
    board.write("switch.clear_counters", 1)
    cleared = board.counters("switch")
    nonzero = {name: cleared[name] for name in names if any(_as_list(cleared[name]))}
    second = switch_traffic_test(board, packets=packets, timeout=timeout)
    after = board.counters("switch")
    # Counted from zero: the absolute counters are the second test's checked differences.
    exact = {name: after[name] == second["counters"][name]
             for name in ("packets_in", "bytes_in", "packets_out", "bytes_out", "drops",
                          "grants")}
    checks = {
        "traffic_before": first["ok"],
        "all_zero_after_clear": not nonzero,
        "reads_zero_twice": board.read("switch.clear_counters") == 0,
        "traffic_after": second["ok"],
        "exact_after_clear": all(exact.values()),
        "traffic_was_counted": sum(_as_list(after["packets_out"])) > 0,
        "watermark_restarted": any(_as_list(after["occupancy_max"])),
    }
    return {"ok": all(checks.values()), "checks": checks, "nonzero_after_clear": nonzero,
            "exact": exact, "counters": after}


def traffic_test(board, *, packets=16, block="lanes", timeout=2.0):
    """Program the route table, send ``packets`` packets, check what comes back and what the
    counters say. Returns a dict of results; ``ok`` is True when everything agrees.
    (Boards whose design under test is the switch run :func:`switch_traffic_test`.)"""
    if block == "lanes" and dut_kind(board) == "switch":
        return switch_traffic_test(board, packets=packets, timeout=timeout)
    lanes = board.read(f"{block}.lanes")
    table = board.regmap.block(block).register("route").count
    # Key k goes to lane k % lanes; key table-1 is left unrouted so drops are exercised.
    routes = [(k % lanes) + 1 for k in range(table - 1)] + [0]
    board.write_table(f"{block}.route", routes)
    board.write(f"{block}.clear", 1)
    sent, expected, received = [], [], []
    lane_packets = [0] * lanes
    drops = 0
    for i in range(packets):
        key = (i * 5) % table
        pkt = make_packet(key, i, size=24 + (i * 37) % 200)
        board.send(0, pkt)
        sent.append(pkt)
        if routes[key]:
            expected.append(pkt)
            lane_packets[routes[key] - 1] += 1
            got = board.receive(0, timeout=timeout, raw=True)
            received.append(got)
        else:
            drops += 1
    counters = board.counters(block)
    checks = {
        "packets_returned": received == expected,
        "rx_packets": counters["rx_packets"] == packets,
        "rx_drops": counters["rx_drops"] == drops,
        "tx_packets": counters["tx_packets"] == len(expected),
        "lane_packets": list(counters["lane_packets"] if lanes > 1 else [counters["lane_packets"]])
        == lane_packets,
    }
    return {"ok": all(checks.values()), "checks": checks, "counters": counters,
            "sent": packets, "returned": sum(1 for r in received if r is not None),
            "expected_lanes": lane_packets, "expected_drops": drops}


def _switch_routes(board):
    """Destination d -> port d % ports, the host's address -> port 0, the last entry empty."""
    from ...hdl.switch.packets import route_entry_value
    ports = board.read("switch.cfg_ports")
    entries = board.read("switch.cfg_route_entries")
    routes = {HOST_ADDRESS: 0}
    routes.update({d: d % ports for d in range(1, entries - 1)})
    board.write_table("switch.route", [route_entry_value(routes[d]) if d in routes else 0
                                       for d in range(entries)])
    return ports, entries, routes


def _drained_counters(board, generator):
    """The on-board generator's counters once its queue has drained (it drains at line
    rate; the bounded poll only guards against a stalled generator)."""
    for _ in range(100):
        if board.read(f"{generator}.queued") == 0:
            break
    return board.counters(generator)


def switch_onboard_traffic_test(board, *, packets=16, generator="traffic", length=100):
    """:func:`onboard_traffic_test` for the switch: the generator's key is the DCNA; packets
    to port k come back through reflector k, to port 0 straight into the sink."""
    from ...hdl.switch.ingress import SWITCH_DROP_REASONS
    ports, entries, routes = _switch_routes(board)
    reasons = list(SWITCH_DROP_REASONS)
    before, dp_before = board.counters("switch"), board.counters("dataplane")
    board.write(f"{generator}.clear", 1)
    board.write(f"{generator}.length", length)
    reflected, drops, returned = [0] * (ports - 1), 0, 0
    for i in range(packets):
        key = 1 + (i * 7) % (entries - 1)
        board.write(f"{generator}.key", key)
        board.write(f"{generator}.start", 1)
        if key in routes:
            returned += 1
            if routes[key]:
                reflected[routes[key] - 1] += 1
        else:
            drops += 1
    gen = _drained_counters(board, generator)
    d = counter_delta(before, board.counters("switch"))
    dp = counter_delta(dp_before, board.counters("dataplane"))
    checks = {
        "sent": gen["sent"] == packets,
        "received": gen["received"] == returned,
        "received_bytes": gen["received_bytes"] == returned * length,
        "drops": d["drops"][reasons.index("unknown_destination")] == drops,
        "packets_out_host_port": sum(d["packets_out"][:board.read("switch.cfg_num_vls")])
        == returned,
        "reflected": _as_list(dp["reflected"]) == reflected,
    }
    return {"ok": all(checks.values()), "checks": checks, "counters": d, "sent": packets,
            "returned": gen["received"], "expected_drops": drops,
            "expected_reflected": reflected}


def onboard_traffic_test(board, *, packets=16, block="lanes", generator="traffic",
                         length=100):
    """Like :func:`traffic_test` for designs whose packets come from the on-board generator
    (no host data path): per route key, start packets and compare the counters."""
    if block == "lanes" and dut_kind(board) == "switch":
        return switch_onboard_traffic_test(board, packets=packets, generator=generator,
                                           length=length)
    lanes = board.read(f"{block}.lanes")
    table = board.regmap.block(block).register("route").count
    routes = [(k % lanes) + 1 for k in range(table - 1)] + [0]
    board.write_table(f"{block}.route", routes)
    board.write(f"{block}.clear", 1)
    board.write(f"{generator}.clear", 1)
    board.write(f"{generator}.length", length)
    lane_packets, drops, returned = [0] * lanes, 0, 0
    keys = [(i * 5) % table for i in range(packets)]
    for key in keys:
        board.write(f"{generator}.key", key)
        board.write(f"{generator}.start", 1)
        if routes[key]:
            lane_packets[routes[key] - 1] += 1
            returned += 1
        else:
            drops += 1
    gen = _drained_counters(board, generator)
    counters = board.counters(block)
    lp = counters["lane_packets"] if lanes > 1 else [counters["lane_packets"]]
    checks = {
        "sent": gen["sent"] == packets,
        "received": gen["received"] == returned,
        "received_bytes": gen["received_bytes"] == returned * length,
        "rx_drops": counters["rx_drops"] == drops,
        "lane_packets": list(lp) == lane_packets,
    }
    return {"ok": all(checks.values()), "checks": checks, "counters": counters,
            "sent": packets, "returned": gen["received"], "expected_lanes": lane_packets,
            "expected_drops": drops}


def csr_rate(board, *, seconds=1.0, burst_words=None):
    """Measured single-register round trips per second and burst-read throughput."""
    addr = board.regmap.address("sys.scratch")
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        board.client.run([Command(Op.READ, addr, 1)])
        n += 1
    rt_rate = n / (time.perf_counter() - start)
    # Largest burst that fits one answer, of addresses that exist: repeat-read one register.
    burst_words = burst_words or (board.client.max_response - RESPONSE_BYTES -
                                  COMMAND_BYTES) // WORD_BYTES
    burst_words = min(burst_words, 255)
    m, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        board.client.run([Command(Op.READ, addr, burst_words)])
        m += 1
    elapsed = time.perf_counter() - start
    out = {"round_trips_per_s": rt_rate, "burst_words": burst_words,
           "burst_reads_per_s": m / elapsed,
           "burst_bytes_per_s": m * burst_words * WORD_BYTES / elapsed}
    # Every counter and table of the design under test's main block, one burst per read.
    block = "switch" if dut_kind(board) == "switch" else "lanes"
    if block in {b.name for b in board.regmap.blocks}:
        k, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            board.counters(block)
            k += 1
        out.update(block=block, block_words=board.regmap.block(block).size,
                   block_reads_per_s=k / (time.perf_counter() - start))
    return out


def real_board_estimate(clock_hz, link_bits_per_s, *, overhead_bytes, burst_words=255,
                        host_turnaround_s=50e-6):
    """What a real board would give, from the bridge's cycle counts and the link rate.

    ``overhead_bytes``: per-frame bytes on the wire besides the bridge frame (Ethernet +
    IPv4 + UDP headers, FCS, preamble and gap: 66; SLIP: 2 ENDs, 10 bits per byte on a UART
    is folded into ``link_bits_per_s``). ``host_turnaround_s``: the host's own send/receive
    latency, which dominates on a PC.
    """
    single = [Command(Op.READ, 0, 1)]
    burst = [Command(Op.READ, 0, burst_words)]

    def round_trip(cmds):
        req = REQUEST_BYTES + COMMAND_BYTES * len(cmds)
        resp = RESPONSE_BYTES + sum(COMMAND_BYTES + c.count * WORD_BYTES for c in cmds)
        wire = (req + resp + 2 * overhead_bytes) * 8 / link_bits_per_s
        engine = (bridge_cycles(cmds) + req + resp) / clock_hz
        return wire + engine + host_turnaround_s

    t1, tb = round_trip(single), round_trip(burst)
    return {"round_trips_per_s": 1 / t1, "burst_bytes_per_s": burst_words * WORD_BYTES / tb,
            "engine_cycles_single": bridge_cycles(single),
            "engine_cycles_burst": bridge_cycles(burst)}
