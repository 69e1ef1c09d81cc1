"""Unit tests of the link layer pieces in Amaranth's simulator (no Verilator needed)."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ubproto.config import LinkConfig, ProtocolConfig
from ubproto.errors import ConfigError
from ubproto.hdl.fault.injector import probability_threshold, xorshift32
from ubproto.hdl.link.common import (PLAN_LATENCY, LinkParams, PlanLayout, plan_pipeline,
                                     plan_python)
from ubproto.hdl.link.crccheck import SplitCrc30Check
from ubproto.hdl.link.framer import Framer, TxQueue
from ubproto.hdl.link.rxbuf import RxBuffer
from ubproto.hdl.proto.codec import (DataPacket, _layout, block_capacity, encode_packet,
                                     max_payload_bytes, packet_flits, split_stream)
from ubproto.hdl.proto.crc30 import FlitCrc30, crc30
from ubproto.hdl.stream import bytes_to_words


def small_params(B=4, max_packet=16, num_vls=1, cell=1):
    return LinkParams.from_config(
        ProtocolConfig(max_block_flits=B, max_packet_flits=max_packet, num_vls=num_vls,
                       cell_flits=cell),
        LinkConfig(rx_buffer_cells=max_packet, tx_queue_words=64))


@pytest.mark.parametrize("B", [1, 2, 4, 32])
def test_plan_matches_codec(B):
    for n in range(1, max_payload_bytes(16 * B, B) + 1, 1 if B < 32 else 7):
        chunks, last_flits, pad = _layout(n, B)
        assert plan_python(n, B) == (len(chunks), last_flits, pad, packet_flits(n, B))


@pytest.mark.parametrize("B,max_packet", [(1, 16), (3, 40), (4, 64), (32, 512)])
def test_plan_pipeline_matches_codec(B, max_packet):
    """The pipelined HDL plan, one payload size per cycle, equals the codec's rule for every
    size (a sample for large packets), PLAN_LATENCY cycles later; oversized and empty
    payloads are marked drop."""
    max_payload = max_payload_bytes(max_packet, B)
    max_blocks = -(-max_packet // B)
    m = Module()
    n = Signal(range(max_payload + 21 + 1))
    valid = Signal()
    layout = PlanLayout(max_payload, max_packet)
    plan, plan_valid, tag = plan_pipeline(m, n, valid, B, max_payload, max_blocks, layout,
                                          extra=n)
    sizes = list(range(0, max_payload + 22, 1 if B < 32 else 5)) + [max_payload]
    got = []

    # Back-to-back sizes with a bubble (valid low) after every third one.
    stream = [x for i, size in enumerate(sizes) for x in ([size, None] if i % 3 == 2
                                                           else [size])]

    async def bench(ctx):
        for size in stream + [None] * (PLAN_LATENCY + 1):
            ctx.set(valid, size is not None)
            ctx.set(n, size or 0)
            if ctx.get(plan_valid):
                got.append((ctx.get(tag), ctx.get(plan)))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [t for t, _ in got] == sizes
    for size, pl in got:
        if size == 0 or size > max_payload:
            assert pl["drop"] == 1, size
            continue
        blocks, last_flits, pad, total = plan_python(size, B)
        assert pl["drop"] == 0
        assert (pl["nbytes"], pl["blocks_m1"], pl["last_flits_m1"], pl["pad"],
                pl["total_flits"]) == (size, blocks - 1, last_flits - 1, pad, total), size


@pytest.mark.parametrize("B,max_packet", [(4, 16), (2, 8), (1, 8)])
def test_framer_output_equals_codec(B, max_packet):
    prm = small_params(B, max_packet)
    m = Module()
    m.submodules.q = q = TxQueue(prm)
    m.submodules.f = f = Framer(prm, 6)
    wiring.connect(m, q.words, f.words[0])
    wiring.connect(m, q.plans, f.plans[0])
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rng = random.Random(B)
    sizes = [1, 12, 13, 16, 17, 32, 33, 50, prm.max_payload] + \
        [rng.randrange(1, prm.max_payload + 1) for _ in range(12)]
    packets = [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]
    out = []

    async def feed(ctx):
        for payload in packets:
            for data, nbytes, first, last in bytes_to_words(payload):
                ctx.set(q.i.valid, 1)
                ctx.set(q.i.payload, {"data": data | rng.randrange(2**8) * (nbytes < 20),
                                      "nbytes": nbytes, "first": first, "last": last})
                await ctx.tick().until(q.i.ready)
        ctx.set(q.i.valid, 0)

    async def drain(ctx):
        await ctx.tick().repeat(100)
        popped = False
        for _ in range(1500):
            # The framer's contract (as LinkTx keeps it): no start in the cycle after a plan
            # pop, the registered head facts describe the popped packet then.
            busy = ctx.get(f.busy)
            go = busy or (ctx.get(f.plans[0].valid) and not popped)
            ctx.set(f.advance, go)
            popped = go and not busy
            if go:
                out.append((ctx.get(f.flit.data), ctx.get(f.flit.block_last)))
            await ctx.tick()

    sim.add_testbench(feed, background=True)
    sim.add_testbench(drain)
    sim.run()
    expected = b"".join(encode_packet(DataPacket(p, cfg=6), max_block_flits=B,
                                      max_packet_flits=max_packet) for p in packets)
    got, block = b"", b""
    for data, block_last in out:
        block += data.to_bytes(20, "big")
        if block_last:       # the CRC stage of LinkTx fills the trailer
            got += block[:-4] + crc30(block[:-4]).to_bytes(4, "big")
            block = b""
    assert got == expected


def _flit_meta(n, B):
    blocks, last_flits, _pad, _total = plan_python(n, B)
    out, rem = [], n
    for b in range(blocks):
        flits = last_flits if b == blocks - 1 else B
        brem = rem if b == blocks - 1 else block_capacity(b == 0, B)
        for i in range(flits):
            hdr = (4 if b == 0 else 2) if i == 0 else 0
            take = min(20 - hdr - (4 if i == flits - 1 else 0), brem)
            brem -= take
            rem -= take
            out.append((hdr, take, b == blocks - 1 and i == flits - 1, b))
    return out


def test_rx_buffer_rollback_backpressure_and_credit_return():
    B, cell_shift = 4, 2
    dut = RxBuffer(capacity=40, max_cell_shift=3)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rng = random.Random(2)
    packets = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 250)))
               for _ in range(50)]
    got, freed = [], [0]

    async def writer(ctx):
        ctx.set(dut.cell_shift, cell_shift)
        for payload in packets:
            wire = encode_packet(DataPacket(payload, cfg=6), max_block_flits=B,
                                 max_packet_flits=64)
            blocks = {}
            for i, meta in enumerate(_flit_meta(len(payload), B)):
                blocks.setdefault(meta[3], []).append((i, meta))
            for flits in blocks.values():
                attempts = 2 if rng.random() < 0.2 else 1      # first attempt rolled back
                for attempt in range(attempts):
                    bad = attempt < attempts - 1
                    for j, (i, (off, nbytes, last, _)) in enumerate(flits):
                        while not ctx.get(dut.space):
                            await ctx.tick()
                        end = j == len(flits) - 1
                        ctx.set(dut.wr_en, 1)
                        # A rolled-back attempt carries other bytes (a corrupted block), so
                        # a replay written anywhere but over it reads back wrong.
                        flit = (bytes(rng.randrange(256) for _ in range(20)) if bad
                                else wire[20 * i:20 * i + 20])
                        ctx.set(dut.wr_data, int.from_bytes(flit, "big"))
                        ctx.set(dut.wr_offset, off)
                        ctx.set(dut.wr_nbytes, nbytes)
                        ctx.set(dut.wr_last, last)
                        ctx.set(dut.commit_block, end and not bad)
                        ctx.set(dut.commit_packet, end and not bad and last)
                        ctx.set(dut.rollback_block, end and bad)
                        await ctx.tick()
                        for s in (dut.wr_en, dut.commit_block, dut.commit_packet,
                                  dut.rollback_block):
                            ctx.set(s, 0)

    async def reader(ctx):
        current = b""
        for _ in range(7000):
            ctx.set(dut.o.ready, rng.random() < 0.7)
            await ctx.delay(1e-8)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                word = ctx.get(dut.o.payload)
                current += word.data.to_bytes(20, "big")[:word.nbytes]
                if word.last:
                    got.append(current)
                    current = b""
            freed[0] += ctx.get(dut.freed)
            await ctx.tick()

    sim.add_testbench(writer, background=True)
    sim.add_testbench(reader)
    sim.run()
    assert got == packets
    cells = 1 << cell_shift
    assert freed[0] == sum(-(-plan_python(len(p), B)[3] // cells) for p in packets)


def test_link_config_validation():
    with pytest.raises(ConfigError, match="retry_buffer_blocks"):
        LinkConfig(retry_buffer_blocks=48)
    with pytest.raises(ConfigError, match="data_cfg"):
        LinkConfig(data_cfg=2)
    with pytest.raises(ConfigError, match="cannot hold the largest packet"):
        LinkParams.from_config(ProtocolConfig(max_packet_flits=512, cell_flits=8),
                               LinkConfig(rx_buffer_cells=32))
    with pytest.raises(ConfigError, match="power of two"):
        LinkParams.from_config(ProtocolConfig(cell_flits=6), LinkConfig())


def test_fault_probability_threshold():
    assert probability_threshold(0) == 0
    assert probability_threshold(1) == 2**32 - 1
    assert probability_threshold(1e-3) == round(1e-3 * 2**32)
    with pytest.raises(ConfigError):
        probability_threshold(1.5)
    # xorshift32 hits a threshold at the expected rate (the injector's error decision).
    x, hits, thr = 1, 0, probability_threshold(0.01)
    for _ in range(200000):
        x = xorshift32(x)
        hits += x < thr
    assert 1700 < hits < 2300


def test_malformed_flits_are_what_the_codec_rejects():
    from ubproto.hdl.link.traffic import malformed_flits
    reasons = [split_stream(f.to_bytes(20, "big"), max_block_flits=4,
                            max_packet_flits=16)[0].reason for f in malformed_flits(4)]
    assert {"reserved_cfg", "bad_lch", "bad_length", "truncated"} <= set(reasons)


def _block_flits(blk):
    n = len(blk) // 20
    return [(blk[20 * i:20 * i + 20], i == 0, i == n - 1) for i in range(n)]


def _crc_unit_outputs(unit, output, schedule, *, data_ahead):
    """Drive a CRC unit (FlitCrc30 or SplitCrc30Check ports) through ``schedule`` (one entry
    per cycle: (flit bytes, first, last), or None: idle, random data on the wire) and return
    ``output`` on every last flit. With ``data_ahead`` the data goes in a cycle before its
    valid/first/last."""
    m = Module()
    m.submodules.unit = unit
    rng = random.Random(5)
    got = []

    async def bench(ctx):
        prev = None
        for cyc in range(len(schedule) + 1):
            now = schedule[cyc] if cyc < len(schedule) else None
            ctrl = prev if data_ahead else now
            ctx.set(unit.data, int.from_bytes(now[0], "big") if now else rng.randrange(1 << 160))
            ctx.set(unit.valid, ctrl is not None)
            ctx.set(unit.first, bool(ctrl and ctrl[1]))
            ctx.set(unit.last, bool(ctrl and ctrl[2]))
            if ctrl is not None and ctrl[2]:
                got.append(ctx.get(output))
            prev = now
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("data_ahead", [False, True])
def test_flit_crc30_matches_reference(data_ahead):
    """FlitCrc30 (both forms: one stage, or the data half a cycle ahead) gives the codec's
    CRC30 of random blocks of 1..6 flits, fed back to back with idle cycles between."""
    crc = FlitCrc30(data_ahead=data_ahead)
    rng = random.Random(30 + data_ahead)
    blocks = [bytes(rng.randrange(256) for _ in range(20 * rng.randrange(1, 7)))
              for _ in range(40)]
    schedule = []
    for blk in blocks:
        schedule += _block_flits(blk) + [None] * rng.randrange(2)
    got = _crc_unit_outputs(crc, crc.crc, schedule, data_ahead=data_ahead)
    assert got == [crc30(blk[:-4]) for blk in blocks]


def _split_check_verdicts(schedule, mutant=None):
    """SplitCrc30Check's ``match`` on every last flit of ``schedule``."""
    chk = SplitCrc30Check(mutant=mutant)
    return [bool(v) for v in _crc_unit_outputs(chk, chk.match, schedule, data_ahead=True)]


def _with_trailer(body, crc):
    return body + crc.to_bytes(4, "big")


def _random_check_schedule(seed):
    """Random blocks of 1..6 flits, half with the right trailer, half with one bit flipped
    anywhere; back to back, with idle cycles, and after abandoned partial blocks (a first
    flit whose block never ends: the next block must start from the initial value)."""
    rng = random.Random(seed)
    schedule, good = [], []
    for _ in range(80):
        body = bytes(rng.randrange(256) for _ in range(20 * rng.randrange(1, 7) - 4))
        blk = bytearray(_with_trailer(body, crc30(body) | rng.randrange(4) << 30))
        ok = rng.randrange(2) == 0
        if not ok:
            bit = rng.randrange(8 * len(blk) - 2)     # the two spare trailer bits don't count
            bit += 2 if bit >= 8 * len(blk) - 32 else 0
            blk[bit // 8] ^= 0x80 >> (bit % 8)
        if rng.randrange(4) == 0:
            schedule += [(bytes(rng.randrange(256) for _ in range(20)), True, False)]
        schedule += _block_flits(bytes(blk))
        schedule += [None] * rng.randrange(2)
        good.append(ok)
    return schedule, good


def test_split_crc30_check_matches_reference():
    """SplitCrc30Check (the receiver's compare split around the running state) says a block
    checks exactly when its trailer is the codec's CRC30, on random blocks and schedules."""
    schedule, good = _random_check_schedule(31)
    assert _split_check_verdicts(schedule) == good


def test_split_crc30_check_mutant_is_caught():
    """The schedule above catches a check that compares a first flit against the running
    register (left over from an abandoned block) instead of the initial value."""
    schedule, good = _random_check_schedule(31)
    assert _split_check_verdicts(schedule, mutant="first_uses_register") != good


@pytest.mark.parametrize("flits", [1, 2, 3])
def test_split_crc30_check_agrees_on_a_basis(flits):
    """A complete check of SplitCrc30Check against the codec's CRC30 for blocks of 1..3
    flits (1 is the initial-value branch, 2 and 3 the running register), not a sample.

    The check is ``match = (S(body) == trailer)`` with S built of XOR networks: an affine
    map of the body bits over GF(2), as the CRC30 is. Two affine maps agree everywhere iff
    they agree on 0 and on every unit vector, so the zero body and each single-bit body with
    the codec's CRC30 as trailer must match; with one trailer bit flipped each must not, and
    the two spare trailer bits must not matter."""
    body_bits = 160 * flits - 32
    bodies = [0] + [1 << i for i in range(body_bits)]
    schedule, expect = [], []
    for i, value in enumerate(bodies):
        body = value.to_bytes(body_bits // 8, "big")
        crc = crc30(body)
        for trailer, ok in ((crc | (i % 4) << 30, True), (crc ^ 1 << (i % 30), False)):
            schedule += _block_flits(_with_trailer(body, trailer))
            expect.append(ok)
    assert _split_check_verdicts(schedule) == expect
