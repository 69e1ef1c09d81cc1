"""cocotb testbench of BlockCrcInserter / BlockCrcChecker with scapy-built frames."""

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from scapy.packet import Raw

from ubproto.hdl.proto import codec
from ubproto.hdl.proto.crc30 import CheckedWord
from ubproto.hdl.proto.formats import BCRC, BCRC_BYTES, FLIT_BYTES, Nlp
from ubproto.hdl.proto.scapy_layers import CTPH, NTH16, UBLink
from ubproto.hdl.stream import PacketWord
from ubproto.verify.cocotb_harness import cocotb_params
from ubproto.verify.vip import PacketSink, PacketSource, start_clock_and_reset

CLOCK_NS = 10


def scapy_frame(rng, max_payload, max_block_flits):
    n = rng.randrange(1, max_payload)
    layers = (UBLink(vl=rng.randrange(16), rt=rng.randrange(4)) /
              NTH16(scna=rng.getrandbits(16), dcna=rng.getrandbits(16), nlp=Nlp.CTP) / CTPH() /
              Raw(bytes(rng.getrandbits(8) for _ in range(n))))
    if max_block_flits == 32:
        return bytes(layers)   # scapy frames with the profile's default block size
    pkt = codec.DataPacket(bytes(layers[NTH16]), vl=layers.vl, rt=layers.rt)
    return codec.encode_packet(pkt, max_block_flits=max_block_flits)


def block_ends(frame, max_block_flits):
    flits = len(frame) // FLIT_BYTES
    return [i for i in range(flits) if i == flits - 1 or i % max_block_flits == max_block_flits - 1]


def clear_crcs(frame, max_block_flits):
    """The frame with every CRC30 field zeroed (poison bits kept): what a TX hands over."""
    b = bytearray(frame)
    for i in block_ends(frame, max_block_flits):
        end = (i + 1) * FLIT_BYTES
        trailer = BCRC.unpack(b[end - BCRC_BYTES:end])
        b[end - BCRC_BYTES:end] = BCRC.pack(poison=trailer["poison"], crc=0)
    return bytes(b)


async def start(dut):
    await start_clock_and_reset(dut, CLOCK_NS, idle_inputs=("i",), ready_outputs=("o",))


@cocotb.test()
async def inserter_matches_scapy(dut):
    p = cocotb_params()
    if p["role"] != "insert":
        return
    rng = random.Random(cocotb.RANDOM_SEED)
    await start(dut)
    frames = [scapy_frame(rng, p["max_payload"], p["max_block_flits"])
              for _ in range(p["packets"])]
    src = PacketSource(dut, "i", dut.clk, idle_prob=0.2, rng=rng)
    sink = PacketSink(dut, "o", dut.clk, ready_prob=0.7, rng=rng)
    for f in frames:
        src.send_nowait(clear_crcs(f, p["max_block_flits"]))
    cocotb.start_soon(sink.run())
    await src.run()
    await ClockCycles(dut.clk, 10)
    assert len(sink.packets) == len(frames)
    for n, (got, want) in enumerate(zip(sink.packets, frames)):
        assert got == want, f"frame {n}: CRC insertion differs from scapy/codec"


@cocotb.test()
async def checker_flags_exactly_the_corrupted_blocks(dut):
    p = cocotb_params()
    if p["role"] != "check":
        return
    rng = random.Random(cocotb.RANDOM_SEED)
    await start(dut)
    mbf = p["max_block_flits"]
    expected = []       # (crc_ok, poison) per block, in order
    src = PacketSource(dut, "i", dut.clk, idle_prob=0.2, rng=rng)
    for _ in range(p["packets"]):
        frame = bytearray(scapy_frame(rng, p["max_payload"], mbf))
        ends = block_ends(frame, mbf)
        start_flit = 0
        for end in ends:
            ok = rng.random() < 0.7
            if not ok:
                # Flip one bit anywhere in the block, trailer CRC bits included.
                lo, hi = start_flit * FLIT_BYTES, (end + 1) * FLIT_BYTES
                pos = rng.randrange(lo, hi)
                bit = rng.randrange(8)
                if pos >= hi - BCRC_BYTES and (pos - (hi - BCRC_BYTES)) * 8 + (7 - bit) < 2:
                    ok = True   # the flip hit the reserved/poison bits, not covered (A3)
                frame[pos] ^= 1 << bit
            trailer = BCRC.unpack(frame[(end + 1) * FLIT_BYTES - BCRC_BYTES:])
            expected.append((ok, trailer["poison"]))
            start_flit = end + 1
        src.send_nowait(bytes(frame))

    verdicts = []
    payload_fields = {name: (f.offset, f.width) for name, f in CheckedWord}

    async def monitor():
        while True:
            dut.o__ready.value = int(rng.random() < 0.7)
            await ReadOnly()
            if dut.o__valid.value and dut.o__ready.value:
                v = int(dut.o__payload.value)
                get = lambda n: (v >> payload_fields[n][0]) & ((1 << payload_fields[n][1]) - 1)
                if get("block_last"):
                    verdicts.append((bool(get("crc_ok")), get("poison")))
            await RisingEdge(dut.clk)

    cocotb.start_soon(monitor())
    await src.run()
    await ClockCycles(dut.clk, 10)
    assert len(verdicts) == len(expected)
    mismatches = [(n, got, want) for n, (got, want) in enumerate(zip(verdicts, expected))
                  if got[0] != want[0] or got[1] != want[1]]
    assert not mismatches, mismatches[:10]
    assert sum(not ok for ok, _ in expected) > 0, "no block was corrupted: test proves nothing"
