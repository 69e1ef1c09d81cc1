"""Checks any target can run: identity, counters, a short traffic test, CSR rate.

Shared by ``ubproto hil``, the HIL test suite and ``benchmarks/hil_csr_rate.py``, so that
what a user runs on the bench is what CI runs against the model and the simulated boards.
"""

import time

from ...hdl.host.protocol import (COMMAND_BYTES, REQUEST_BYTES, RESPONSE_BYTES, WORD_BYTES,
                                  Command, Op, bridge_cycles)
from ...hdl.proto.scapy_layers import CTPH, UBoE

__all__ = ["traffic_test", "onboard_traffic_test", "csr_rate", "make_packet",
           "real_board_estimate"]


def make_packet(lbf, index, size=64):
    """A UB-over-UDP payload (UBoE shim + CTPH + bytes) whose route key is ``lbf``."""
    body = bytes((index + i) & 0xFF for i in range(max(0, size - 5)))
    return bytes(UBoE(lbf=lbf) / CTPH() / body)


def traffic_test(board, *, packets=16, block="lanes", timeout=2.0):
    """Program the route table, send ``packets`` packets, check what comes back and what the
    counters say. Returns a dict of results; ``ok`` is True when everything agrees."""
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


def onboard_traffic_test(board, *, packets=16, block="lanes", generator="traffic",
                         length=100):
    """Like :func:`traffic_test` for designs whose packets come from the on-board generator
    (no host data path): per route key, start packets and compare the counters."""
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
    for _ in range(100):     # the generator drains at line rate; this only guards a stall
        if board.read(f"{generator}.queued") == 0:
            break
    gen = board.counters(generator)
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
    return {"round_trips_per_s": rt_rate, "burst_words": burst_words,
            "burst_reads_per_s": m / elapsed,
            "burst_bytes_per_s": m * burst_words * WORD_BYTES / elapsed}


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
