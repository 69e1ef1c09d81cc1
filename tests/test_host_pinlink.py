"""Pin links of the scale-up designs (platforms/designs/pinlink.py) in Amaranth's simulator.

The serializer/deserializer pair carries random flits bit for bit over a few pins; a
LinkPort (LinkEndpoint + FaultInjector + pin PHY, looped) brings its link up by itself and
returns a switch-port packet with SCNA and DCNA swapped. The HIL suite runs the same ports
inside the whole design (``--hil-dut switch-links``).
"""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from ubproto.errors import ConfigError
from ubproto.hdl.stream import WORD_BYTES, bytes_to_words
from ubproto.platforms.designs.pinlink import (LinkPort, PinDeserializer, PinSerializer,
                                                beats_per_flit)
from ubproto.platforms.designs.switch import to_switch_port
from ubproto.platforms.hil.checks import make_switch_packet, swapped_addresses


@pytest.mark.parametrize("pins", [8, 32, 33])
def test_serializer_and_deserializer_carry_flits_bit_for_bit(pins):
    m = Module()
    m.submodules.ser = ser = PinSerializer(pins)
    m.submodules.deser = deser = PinDeserializer(pins)
    k = beats_per_flit(pins)
    rng = random.Random(pins)
    flits = [rng.getrandbits(160) for _ in range(12)]
    got = []

    async def bench(ctx):
        phase = 0
        sent = 0
        for _ in range(k * (len(flits) + 4)):
            tick = phase == k - 1
            ctx.set(ser.tick, tick)
            ctx.set(deser.tick, tick)
            ctx.set(ser.i.valid, sent < len(flits))
            ctx.set(ser.i.data, flits[sent] if sent < len(flits) else 0)
            ctx.set(deser.i, ctx.get(ser.o))
            if tick and ctx.get(deser.o.valid):
                got.append(ctx.get(deser.o.data))
            await ctx.tick()
            if tick:
                sent += 1
            phase = (phase + 1) % k

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == flits


def test_pin_count_is_validated():
    with pytest.raises(ConfigError, match="pins"):
        beats_per_flit(1)


def _run_link_port(down=False, cycles=4000):
    dut = LinkPort(2, 320, pins=32)
    pkt = to_switch_port(make_switch_packet(dcna=5, index=3, size=70, scna=9))
    words = bytes_to_words(pkt)
    result = {}

    async def bench(ctx):
        ctx.set(dut.down_cmd, int(down))
        ctx.set(dut.sw_rx.ready, 1)
        for _ in range(3000):
            await ctx.tick()
            if ctx.get(dut.state) == 3:
                break
        result["state"] = ctx.get(dut.state)
        i, out = 0, b""
        for _ in range(cycles):
            if i < len(words):
                data, nbytes, first, last = words[i]
                ctx.set(dut.sw_tx.valid, 1)
                ctx.set(dut.sw_tx.payload.data, data)
                ctx.set(dut.sw_tx.payload.nbytes, nbytes)
                ctx.set(dut.sw_tx.payload.first, first)
                ctx.set(dut.sw_tx.payload.last, last)
            else:
                ctx.set(dut.sw_tx.valid, 0)
            await ctx.delay(1e-9)
            if i < len(words) and ctx.get(dut.sw_tx.ready):
                i += 1
            if ctx.get(dut.sw_rx.valid):
                n = ctx.get(dut.sw_rx.payload.nbytes)
                out += ctx.get(dut.sw_rx.payload.data).to_bytes(WORD_BYTES, "big")[:n]
                if ctx.get(dut.sw_rx.payload.last):
                    result["packet"] = out
                    break
            await ctx.tick()
        result.update(tx=ctx.get(dut.tx_packets), rx=ctx.get(dut.rx_packets),
                      frames=ctx.get(dut.pin_frames))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return pkt, result


def test_looped_link_port_comes_up_and_returns_the_packet_swapped():
    pkt, result = _run_link_port()
    assert result["state"] == 3                     # NORMAL, from its own Init blocks
    assert result["packet"] == swapped_addresses(pkt)
    assert result["tx"] == 1 and result["rx"] == 1 and result["frames"] > 100


def test_link_held_down_by_the_fault_injector_carries_nothing():
    pkt, result = _run_link_port(down=True, cycles=600)
    assert result["state"] != 3 and "packet" not in result and result["rx"] == 0
