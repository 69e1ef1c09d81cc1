"""cocotb tests of FecnMarker on scapy-built packets: what is marked, and how the CCI looks."""

import random

import cocotb
from cocotb.triggers import ClockCycles

from ubproto.hdl.cc.marker import FecnLevel, MarkerConfig, MarkSource
from ubproto.hdl.cc.red import RED_LATENCY, MarkOverride, RedProfile, red_params_layout
from ubproto.hdl.proto.formats import CCI_VARIANTS, LPH, CciMode, Cfg
from ubproto.hdl.proto.scapy_layers import CTPH, NTH16
from ubproto.verify.cocotb_harness import cocotb_params

from cc_tb.common import StreamSink, StreamSource, clocked, pack, start

KMIN, KMAX = 1000, 4000
PROFILE = RedProfile(KMIN, KMAX, 0.5)


def packet(payload_len, *, cfg=Cfg.COMPACT16, cci=None, scna=7, dcna=9, lbf=0x5A):
    """LPH + NTH16 + CTPH + payload, as a switch port carries it (de-blocked)."""
    cci = cci or {}
    nth = NTH16(scna=scna, dcna=dcna, lbf=lbf, nlp=0, **{f"cci_{k}": v for k, v in cci.items()})
    body = bytes(nth / CTPH() / bytes(range(payload_len)))
    return LPH.pack(cfg=cfg, vl=1) + body


def cci_of(pkt):
    layer = NTH16(pkt[4:])
    return {"mode": layer.cci_mode, "loc": layer.cci_loc,
            "fecn": layer.cci_fecn if layer.cci_mode in (CciMode.FECN, CciMode.FECN_TS) else None}


def expected_marked(pkt, level, last_hop):
    """``pkt`` with its CCI rewritten as the marker must do it."""
    old = cci_of(pkt)
    carried = old["fecn"] if old["mode"] == CciMode.FECN else 0
    loc = (old["loc"] if old["mode"] == CciMode.FECN else 0) | last_hop
    cci = CCI_VARIANTS[CciMode.FECN].pack(mode=CciMode.FECN, loc=loc, fecn=max(carried, level))
    return pkt[:8] + cci + pkt[10:]      # CCI is bytes 4..5 of the NTH16 (after the LPH)


class Bench:
    def __init__(self, dut, rng):
        self.dut = dut
        self.rng = rng
        self.src = StreamSource(dut.i__valid, dut.i__ready, dut.i__payload, 0.7, rng)
        self.sink = StreamSink(dut.o__valid, dut.o__ready, dut.o__payload, 0.7, rng)

    def program(self, *, real=MarkOverride.RANDOM, phantom=MarkOverride.NEVER,
                source=MarkSource.REAL, enable=1, last_hop=0):
        dut = self.dut
        dut.real_params.value = pack(red_params_layout(len(dut.occupancy)),
                                     PROFILE.registers(override=real))
        dut.phantom_params.value = pack(red_params_layout(len(dut.phantom_occupancy)),
                                        PROFILE.registers(override=phantom))
        dut.control.value = pack(MarkerConfig, {"enable": enable, "source": source,
                                                "last_hop": last_hop})

    async def run(self, packets):
        self.sink.packets.clear()
        for p in packets:
            self.src.send(p)
        await clocked(self.dut, [self.src, self.sink],
                      lambda: self.src.idle and len(self.sink.packets) == len(packets))
        await ClockCycles(self.dut.clk, 2)
        return list(self.sink.packets)


async def setup(dut):
    dut.occupancy.value = 0
    dut.phantom_occupancy.value = 0
    dut.seed_load.value = 0
    dut.seed_value.value = 0
    dut.real_params.value = 0
    dut.phantom_params.value = 0
    dut.control.value = 0
    await start(dut)
    return Bench(dut, random.Random(cocotb_params().get("seed", 1)))


def mixed_packets(rng, count):
    kinds = [{}, {"mode": CciMode.FECN, "loc": 1, "fecn": FecnLevel.SEVERE},
             {"mode": CciMode.FECN, "fecn": FecnLevel.MINOR}, {"mode": CciMode.CAQM, "hint": 0x33}]
    return [packet(rng.randrange(1, 120), cci=rng.choice(kinds)) for _ in range(count)]


@cocotb.test()
async def marks_rewrite_cci_to_fecn(dut):
    """Override ALWAYS: every packet comes out in FECN mode with the right level and Loc;
    everything but the CCI is untouched, including every later word."""
    bench = await setup(dut)
    for last_hop in (0, 1):
        bench.program(real=MarkOverride.ALWAYS, last_hop=last_hop)
        sent = mixed_packets(bench.rng, 30)
        got = await bench.run(sent)
        want = [expected_marked(p, FecnLevel.MINOR, last_hop) for p in sent]
        assert got == want, f"last_hop={last_hop}: first mismatch at packet " \
            f"{next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)}"


@cocotb.test()
async def severe_above_kmax_and_counters(dut):
    bench = await setup(dut)
    bench.program(real=MarkOverride.RANDOM)
    dut.occupancy.value = 2 * KMAX
    await ClockCycles(dut.clk, RED_LATENCY + 2)
    before = int(dut.marked_severe.value)
    sent = mixed_packets(bench.rng, 20)
    got = await bench.run(sent)
    assert got == [expected_marked(p, FecnLevel.SEVERE, 0) for p in sent]
    assert int(dut.marked_severe.value) - before == len(sent)
    # Below Kmin: nothing is marked, the packets pass bit for bit.
    dut.occupancy.value = KMIN - 1
    await ClockCycles(dut.clk, RED_LATENCY + 2)
    sent = mixed_packets(bench.rng, 20)
    assert await bench.run(sent) == sent


@cocotb.test()
async def source_selection(dut):
    """The real rule always says mark and the phantom rule never: the source CSR decides."""
    bench = await setup(dut)
    cases = ((MarkSource.REAL, True), (MarkSource.PHANTOM, False), (MarkSource.BOTH, False),
             (MarkSource.EITHER, True))
    for source, marks in cases:
        bench.program(real=MarkOverride.ALWAYS, phantom=MarkOverride.NEVER, source=source)
        before = [int(dut.marks_real.value), int(dut.marks_phantom.value), int(dut.marked.value)]
        sent = [packet(30) for _ in range(10)]
        got = await bench.run(sent)
        want = [expected_marked(p, FecnLevel.MINOR, 0) for p in sent] if marks else sent
        assert got == want, f"{source.name}: wrong marking"
        after = [int(dut.marks_real.value), int(dut.marks_phantom.value), int(dut.marked.value)]
        assert [a - b for a, b in zip(after, before)] == [10, 0, 10 if marks else 0], source.name
    bench.program(real=MarkOverride.NEVER, phantom=MarkOverride.ALWAYS, source=MarkSource.PHANTOM)
    sent = [packet(30) for _ in range(5)]
    assert await bench.run(sent) == [expected_marked(p, FecnLevel.MINOR, 0) for p in sent]


@cocotb.test()
async def disabled_and_foreign_packets_pass_unchanged(dut):
    bench = await setup(dut)
    bench.program(real=MarkOverride.ALWAYS, enable=0)
    before = int(dut.marks_real.value)
    sent = mixed_packets(bench.rng, 10)
    assert await bench.run(sent) == sent, "disabled marker changed a packet"
    assert int(dut.marks_real.value) - before == 10, "rules stop voting when disabled"
    bench.program(real=MarkOverride.ALWAYS)
    before = int(dut.packets.value)
    sent = [packet(40, cfg=Cfg.IPV4), packet(5, cfg=Cfg.COHERENT)]
    assert await bench.run(sent) == sent, "a non-compact16 packet was modified"
    assert int(dut.packets.value) == before, "a non-compact16 packet was decided on"
