"""Pin links of the scale-up designs (platforms/designs/pinlink.py) in Amaranth's simulator.

The serializer/deserializer pair carries random flits bit for bit over a few pins; a
LinkPort (LinkEndpoint + FaultInjector + pin PHY, looped) brings its link up by itself and
returns a switch-port packet with SCNA and DCNA swapped. The HIL suite runs the same ports
inside the whole design (``--hil-dut switch-links``).
"""

import random

import pytest
from amaranth.hdl import ClockDomain, DomainRenamer, Elaboratable, Module, Mux, Signal
from amaranth.sim import Simulator

from ubproto.errors import ConfigError
from ubproto.hdl.stream import WORD_BYTES, bytes_to_words
from ubproto.platforms.designs.pinlink import (PIN_COUNTERS, SIDE_PINS, LinkPort,
                                                PinDeserializer, PinSerializer, PinState,
                                                beats_per_flit)
from ubproto.platforms.designs.switch import to_switch_port
from ubproto.platforms.hil.checks import make_switch_packet, swapped_addresses


@pytest.mark.parametrize("pins", [8, 32, 33, 79])
def test_serializer_and_deserializer_carry_flits_bit_for_bit(pins):
    """Stream slots (valid or not) and skip slots, one per K clocks, arrive as sent."""
    m = Module()
    m.submodules.ser = ser = PinSerializer(pins)
    m.submodules.deser = deser = PinDeserializer(pins)
    k = beats_per_flit(pins)
    rng = random.Random(pins)
    slots = [(rng.random() < 0.8, rng.random() < 0.7, rng.random() < 0.5, rng.getrandbits(160))
             for _ in range(24)]
    got = []

    async def bench(ctx):
        phase = 0
        sent = 0
        for _ in range(k * (len(slots) + 4)):
            load = phase == k - 1
            stream, valid, ready, flit = slots[sent] if sent < len(slots) else (0, 0, 0, 0)
            ctx.set(ser.load, load)
            ctx.set(ser.stream, stream)
            ctx.set(ser.ready, ready)
            ctx.set(ser.i.valid, valid)
            ctx.set(ser.i.data, flit)
            ctx.set(deser.i, ctx.get(ser.o))
            if ctx.get(deser.done):
                assert not ctx.get(deser.misframe)
                s = bool(ctx.get(deser.stream))
                got.append((s, bool(ctx.get(deser.valid)), bool(ctx.get(deser.ready)),
                            ctx.get(deser.data) if s else 0))
            await ctx.tick()
            if load:
                sent += 1
            phase = (phase + 1) % k

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expected = [(bool(s), bool(s and v), bool(r), f if s else 0) for s, v, r, f in slots]
    assert got[:len(slots)] == expected
    assert all(not s for s, _, _, _ in got[len(slots):])    # skip slots after the last flit


def test_pin_count_is_validated():
    with pytest.raises(ConfigError, match="pins"):
        beats_per_flit(1)
    with pytest.raises(ConfigError, match="pins"):
        beats_per_flit(80)          # the kind pin needs three beats per slot


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


# --- two boards: link ports on their own clocks, pins crossed, forwarded clocks ------------------

class _TwoBoards(Elaboratable):
    """Link port A in domain ``a``, B in domain ``b``; each samples the other's pins in the
    other's (forwarded) clock. ``plug_ab`` = 0 replaces A's pins at B's input by ``noise_b``
    (0: an unplugged cable with pull-downs; random: garbage), likewise ``plug_ba``."""

    def __init__(self, pins=32, mutant=None):
        self.a = LinkPort(2, 320, pins=pins, rx_domain="b", mutant=mutant)
        self.b = LinkPort(2, 320, pins=pins, rx_domain="a", mutant=mutant)
        width = pins + SIDE_PINS
        self.plug_ab = Signal(init=1)
        self.plug_ba = Signal(init=1)
        self.noise_a = Signal(width)
        self.noise_b = Signal(width)

    def elaborate(self, platform):
        m = Module()
        m.domains += [ClockDomain("a"), ClockDomain("b")]
        m.submodules.a = DomainRenamer({"sync": "a"})(self.a)
        m.submodules.b = DomainRenamer({"sync": "b"})(self.b)
        m.d.comb += [self.b.rx_pins.eq(Mux(self.plug_ab, self.a.tx_pins, self.noise_b)),
                     self.a.rx_pins.eq(Mux(self.plug_ba, self.b.tx_pins, self.noise_a))]
        return m


def _packets(scna, count, seed):
    rng = random.Random(seed)
    return [to_switch_port(make_switch_packet(dcna=5, index=i, size=rng.randrange(40, 200),
                                              scna=scna))
            for i in range(count)]


class _Side:
    """Testbench of one board: sends ``packets`` into its switch port, collects what comes
    back out, and records the flits its endpoint sent (stream slots) and took (in RUN)."""

    def __init__(self, port, domain, packets):
        self.port, self.domain = port, domain
        self.words = [w for p in packets for w in bytes_to_words(p)]
        self.packets = packets
        self.received = []
        self.sent_flits = []       # (valid, data) of every stream slot it sent
        self.taken_flits = []      # (valid, data) its endpoint took while RUN
        self.skip_slots = 0        # skip slots it sent while RUN
        ends = [0]
        for p in packets:
            ends.append(ends[-1] + len(bytes_to_words(p)))
        self.ends = ends[1:]
        self.allowed = len(packets)  # packets it may send (the rest wait)

    async def run(self, ctx, stop):
        port, i, out = self.port, 0, b""
        ctx.set(port.sw_rx.ready, 1)
        ser, inj = port.serializer, port.injector
        while not stop():
            go = i < len(self.words) and i < self.ends[self.allowed - 1]
            if go:
                data, nbytes, first, last = self.words[i]
                ctx.set(port.sw_tx.payload.data, data)
                ctx.set(port.sw_tx.payload.nbytes, nbytes)
                ctx.set(port.sw_tx.payload.first, first)
                ctx.set(port.sw_tx.payload.last, last)
            ctx.set(port.sw_tx.valid, go)
            if go and ctx.get(port.sw_tx.ready):
                i += 1
            if ctx.get(ser.load):
                if ctx.get(ser.stream):
                    self.sent_flits.append((ctx.get(ser.i.valid), ctx.get(ser.i.data)))
                elif ctx.get(port.pin_state) == PinState.RUN:
                    self.skip_slots += 1
            if ctx.get(port.tick) and ctx.get(port.pin_state) == PinState.RUN:
                self.taken_flits.append((ctx.get(inj.b_in.valid), ctx.get(inj.b_in.data)))
            if ctx.get(port.sw_rx.valid):
                n = ctx.get(port.sw_rx.payload.nbytes)
                out += ctx.get(port.sw_rx.payload.data).to_bytes(WORD_BYTES, "big")[:n]
                if ctx.get(port.sw_rx.payload.last):
                    self.received.append(out)
                    out = b""
            await ctx.tick(self.domain)

    def counters(self, ctx):
        names = ("state", "link_ups", "tx_replayed_blocks", "rx_bad_crc", "pin_frames",
                 "pin_locked", "pin_state") + PIN_COUNTERS
        return {n: ctx.get(getattr(self.port, n)) for n in names}


def _contiguous_in(part, whole):
    """Whether ``part`` occurs in ``whole`` as one contiguous run (no flit lost, repeated or
    reordered between a sender's stream slots and what the peer's endpoint took)."""
    if not part:
        return False
    for s in range(len(whole) - len(part) + 1):
        if whole[s] == part[0] and whole[s:s + len(part)] == part:
            return True
    return False


def _run_pair(period_a=10e-9, period_b=10.1e-9, cycles=9000, mutant=None, count=10, script=None,
              first=None):
    top = _TwoBoards(mutant=mutant)
    pa, pb = _packets(0x11, count, 1), _packets(0x22, count, 2)
    sa, sb = _Side(top.a, "a", pa), _Side(top.b, "b", pb)
    if first is not None:
        sa.allowed = sb.allowed = first
    result = {"done": False}

    async def side_a(ctx):
        await sa.run(ctx, lambda: result["done"])

    async def side_b(ctx):
        await sb.run(ctx, lambda: result["done"])

    async def control(ctx):
        for c in range(cycles):
            await ctx.tick("a")
            if script and script(ctx, c, top, sa, sb, result):
                break
            if not script and len(sa.received) == count and len(sb.received) == count \
                    and c > cycles // 2:
                break
        result.update(a=sa.counters(ctx), b=sb.counters(ctx), cycles=c)
        result["done"] = True

    sim = Simulator(top)
    sim.add_clock(period_a, domain="a")
    sim.add_clock(period_b, domain="b")
    sim.add_testbench(side_a)
    sim.add_testbench(side_b)
    sim.add_testbench(control)
    sim.run()
    return top, sa, sb, pa, pb, result


def _check_pair(sa, sb, pa, pb, result):
    """Links up, every packet through exactly once in order both ways, the PHY transparent
    (each endpoint took a contiguous run of the peer's flits), nothing lost at the pins."""
    a, b = result["a"], result["b"]
    for name, c in (("A", a), ("B", b)):
        assert c["state"] == 3, (name, c)
        assert c["pin_overflows"] == 0 and c["pin_underflows"] == 0, (name, c)
        assert c["pin_misframes"] == 0 and c["pin_resyncs"] == 0, (name, c)
        assert c["link_ups"] == 1, (name, c)
    assert sb.received == [swapped_addresses(p) for p in pa]
    assert sa.received == [swapped_addresses(p) for p in pb]
    assert len(sb.taken_flits) > 500 and len(sa.taken_flits) > 500
    assert _contiguous_in(sb.taken_flits, sa.sent_flits), "B's endpoint missed or repeated a flit"
    assert _contiguous_in(sa.taken_flits, sb.sent_flits), "A's endpoint missed or repeated a flit"


@pytest.fixture(scope="module")
def pair_1_percent():
    """A at 100 MHz, B 1 % slower (10.1 ns): A waits for B, about one slot in a hundred."""
    return _run_pair()


def test_two_boards_with_different_clocks_carry_packets_both_ways(pair_1_percent):
    top, sa, sb, pa, pb, result = pair_1_percent
    _check_pair(sa, sb, pa, pb, result)


def test_the_faster_board_skips_idle_slots_only(pair_1_percent):
    top, sa, sb, pa, pb, result = pair_1_percent
    a, b = result["a"], result["b"]
    run_slots = len(sa.taken_flits) + a["pin_skips"]
    # A's clock is 1 % faster: it waits in ~1 % of its slots; B, the slower, never waits.
    assert 0.004 * run_slots < a["pin_skips"] < 0.02 * run_slots, (a, run_slots)
    assert b["pin_skips"] == 0, b
    # Every skip went out as a skip slot (a PHY idle: no flit of the link layer in it) and the
    # link layer never saw one: B took A's stream slots exactly (checked above), A's endpoint
    # took every one of B's flits in order while it waited.
    assert sa.skip_slots == a["pin_skips"]
    assert a["rx_bad_crc"] == 0 and b["rx_bad_crc"] == 0
    assert a["tx_replayed_blocks"] == 0 and b["tx_replayed_blocks"] == 0


def test_without_rate_matching_the_pair_test_fails():
    """Mutant: the endpoint ticks every slot in RUN (no waiting). The faster board runs out of
    flits (underflow, the link layer sees missing flits) and the slower one's FIFO
    overflows; the same checks as above catch it."""
    top, sa, sb, pa, pb, result = _run_pair(mutant="free_running")
    a, b = result["a"], result["b"]
    assert a["pin_underflows"] > 0 or b["pin_overflows"] > 0, result
    with pytest.raises(AssertionError):
        _check_pair(sa, sb, pa, pb, result)


def _unplug_script(half):
    """Half the packets, then A -> B unplugged (B's inputs at 0, as the pull-downs hold them),
    then garbage on B's inputs, then plugged in again and the other half."""
    rng = random.Random(7)
    st = {"stage": 0}

    def script(ctx, c, top, sa, sb, result):
        stage = st["stage"]
        if stage == 0 and len(sa.received) == half and len(sb.received) == half:
            ctx.set(top.plug_ab, 0)
            ctx.set(top.noise_b, 0)
            st.update(stage=1, t=c, connected=(sa.counters(ctx), sb.counters(ctx)))
        elif stage == 1 and c - st["t"] == 400:
            st.update(stage=2, unplugged=(sa.counters(ctx), sb.counters(ctx)))
        elif stage == 2:
            ctx.set(top.noise_b, rng.getrandbits(len(top.noise_b)))
            if c - st["t"] == 1200:
                ctx.set(top.plug_ab, 1)
                st.update(stage=3, garbage=(sa.counters(ctx), sb.counters(ctx)), t=c)
                sa.allowed = len(sa.packets)
                sb.allowed = len(sb.packets)
        elif stage == 3 and len(sa.received) == len(sb.packets) and \
                len(sb.received) == len(sa.packets):
            st.update(stage=4, t=c)
        elif stage == 4 and c - st["t"] == 100:
            result["script"] = st
            return True
        return False
    return script


def test_unplugged_and_garbage_pins_take_the_link_down_and_it_recovers():
    count, half = 6, 3
    script = _unplug_script(half)
    top, sa, sb, pa, pb, result = _run_pair(cycles=14000, count=count, script=script,
                                            first=half)
    st = result["script"]
    a0, b0 = st["connected"]
    assert a0["state"] == 3 and b0["state"] == 3 and b0["pin_locked"] == 1
    a1, b1 = st["unplugged"]
    # B lost A's pins: no slots (pin_locked 0), receiver DOWN, its endpoint held down; B tells
    # A it is not ready, so A's link layer goes down too.
    assert b1["pin_locked"] == 0 and b1["pin_state"] == PinState.DOWN, b1
    assert b1["pin_resyncs"] == 1 and b1["state"] != 3 and a1["state"] != 3, (a1, b1)
    a2, b2 = st["garbage"]
    # Garbage: frame marks at random places (counted), no link.
    assert b2["pin_misframes"] > 10 and b2["state"] != 3 and a2["state"] != 3, (a2, b2)
    # Plugged in again: the links come up again and carry the other half, in order.
    a, b = result["a"], result["b"]
    assert a["state"] == 3 and b["state"] == 3 and a["link_ups"] == 2 and b["link_ups"] == 2
    assert sb.received == [swapped_addresses(p) for p in pa]
    assert sa.received == [swapped_addresses(p) for p in pb]
    assert a["pin_overflows"] == 0 and a["pin_underflows"] == 0 and a["pin_resyncs"] == 0, a
