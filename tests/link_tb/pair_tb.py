"""cocotb: two link endpoints through the fault injector, scapy-built UB packets.

A drives random-size packets (NTH16 + CTPH + random payload, built with scapy) on random
VLs into endpoint A; B's receive ports have random back-pressure. The scoreboard checks, per
VL, that B delivers exactly the packets A was given, in order, byte for byte. Parameters
(error rate, packet count, sizes) come from the pytest side.
"""

import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, ReadOnly

from ubproto.hdl.proto.scapy_layers import CTPH, NTH16
from ubproto.hdl.stream import bytes_to_words
from ubproto.verify.cocotb_harness import cocotb_params

DATA_BITS, NBYTES_BITS = 160, 5


def pack_word(data, nbytes, first, last):
    return (data | (nbytes << DATA_BITS) | (int(first) << (DATA_BITS + NBYTES_BITS)) |
            (int(last) << (DATA_BITS + NBYTES_BITS + 1)))


def unpack_word(value):
    v = int(value)
    data = v & ((1 << DATA_BITS) - 1)
    nbytes = (v >> DATA_BITS) & ((1 << NBYTES_BITS) - 1)
    first = (v >> (DATA_BITS + NBYTES_BITS)) & 1
    last = (v >> (DATA_BITS + NBYTES_BITS + 1)) & 1
    return data, nbytes, first, last


def port(dut, name):
    return getattr(dut, name)


async def setup(dut, p):
    Clock(dut.clk, 10, unit="ns").start()
    for name in ("delay", "error_threshold", "burst_threshold", "burst_len", "drop_threshold",
                 "down_cmd", "down_at", "down_for", "down_every", "seed", "inject_on_null"):
        port(dut, f"f_{name}").value = int(p.get(f"f_{name}", 0))
    port(dut, "f_inject__valid").value = 0
    dut.a_enable.value = 1
    dut.b_enable.value = 1
    for side in ("a", "b"):
        for v in range(p["num_vls"]):
            port(dut, f"{side}_tx__{v}__valid").value = 0
            port(dut, f"{side}_rx__{v}__ready").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0


def make_packet(rng, max_payload):
    """A scapy-built UB packet: compact network header, CTPH, random payload."""
    header = NTH16(scna=rng.randrange(1 << 16), dcna=rng.randrange(1 << 16),
                   lbf=rng.randrange(256), sl=rng.randrange(16)) / CTPH(opcode=0)
    head = bytes(header)
    size = rng.randrange(len(head) + 1, max_payload + 1) if rng.random() < 0.7 else \
        rng.choice([len(head) + 1, max_payload])
    return head + bytes(rng.randrange(256) for _ in range(size - len(head)))


async def driver(dut, vl, packets):
    valid = port(dut, f"a_tx__{vl}__valid")
    payload = port(dut, f"a_tx__{vl}__payload")
    ready = port(dut, f"a_tx__{vl}__ready")
    for pkt in packets:
        for data, nbytes, first, last in bytes_to_words(pkt):
            valid.value = 1
            payload.value = pack_word(data, nbytes, first, last)
            while True:
                await RisingEdge(dut.clk)
                if int(ready.value):
                    break
        valid.value = 0


async def monitor(dut, vl, expected, rng, backpressure, errors, done):
    valid = port(dut, f"b_rx__{vl}__valid")
    payload = port(dut, f"b_rx__{vl}__payload")
    ready = port(dut, f"b_rx__{vl}__ready")
    current = b""
    while expected:
        ready.value = int(rng.random() >= backpressure)
        await RisingEdge(dut.clk)
        if int(ready.value) and int(valid.value):
            data, nbytes, first, last = unpack_word(payload.value)
            if first and current:
                errors.append(f"VL{vl}: new packet before the last ended")
            current += data.to_bytes(20, "big")[:nbytes]
            if last:
                want = expected.popleft()
                if current != want:
                    errors.append(f"VL{vl}: packet of {len(current)} bytes differs from the "
                                  f"expected {len(want)} bytes (loss, reorder or corruption)")
                current = b""
    ready.value = 1
    done.append(vl)


@cocotb.test()
async def scapy_packets_exactly_once_in_order(dut):
    p = cocotb_params()
    rng = random.Random(p.get("seed", 1))
    await setup(dut, p)
    per_vl = {v: [] for v in range(p["num_vls"])}
    for _ in range(p["packets"]):
        per_vl[rng.randrange(p["num_vls"])].append(make_packet(rng, p["max_payload"]))
    errors, done = [], []
    for v, pkts in per_vl.items():
        cocotb.start_soon(driver(dut, v, pkts))
        cocotb.start_soon(monitor(dut, v, deque(pkts), random.Random(rng.random()),
                                  p.get("backpressure", 0.3), errors, done))
    for _ in range(p.get("max_cycles", 400000) // 1000):
        await ClockCycles(dut.clk, 1000)
        if len(done) == p["num_vls"] or errors:
            break
    assert not errors, errors[:5]
    assert len(done) == p["num_vls"], f"only VLs {done} finished; stuck"
    if p.get("f_error_threshold"):
        assert int(dut.b_rx_bad_crc.value) + int(dut.a_rx_bad_crc.value) > 0
