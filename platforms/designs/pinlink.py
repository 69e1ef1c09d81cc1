"""Pin links for scale-up designs: a link-layer port of the switch over a few pins.

A :class:`LinkPort` sits on a switch port: the switch's packets go into a
:class:`~ubproto.hdl.link.endpoint.LinkEndpoint`, whose flits cross a
:class:`~ubproto.hdl.fault.injector.FaultInjector` and a simple PHY adapter
(:class:`PinSerializer` / :class:`PinDeserializer`: one 160-bit flit shifted MSB first over
``pins`` data pins plus a frame pin that marks a flit's first beat) and come back in.
In this prototype the pins are looped on chip (``tx_pins`` -> ``rx_pins``; a board top can
route them to a connector instead), so the endpoint talks to itself: it brings the link up
with its own Init blocks, and every packet it sends it receives. What it receives goes back
into the switch port with SCNA and DCNA swapped (like the reflector ports of
:mod:`.switch`), so a packet from the host routed to a link port returns to the host after
crossing the link layer (framing, CRC30, credits, retry) twice in one loop.

The endpoint sends one flit per enabled clock without back-pressure, so the endpoint and
the injector run under a clock enable every ``K = ceil(160 / pins)`` clocks
(:class:`~amaranth.hdl.EnableInserter`); the serializer spends those K clocks on the flit.

Project shortcut (documented in docs/hil.md): the whole switch-port packet, LPH included,
is the link's payload, so no byte realignment is needed between the switch port format
(LPH | NTH16 | ...) and the endpoint's user streams (packet bytes after the LPH that its own
framer writes). A conformant adapter strips the inner LPH (a 4-byte gearbox each way).
"""

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import LinkConfig, ProtocolConfig
from ...errors import ConfigError
from ...hdl.fault.injector import FLIT_BITS, FaultInjector, PhySignature
from ...hdl.host.streams import SkidBuffer
from ...hdl.link.common import LinkParams
from ...hdl.link.endpoint import LinkEndpoint
from ...hdl.stream import WORD_BYTES, packet_stream

__all__ = ["PinSerializer", "PinDeserializer", "LinkPort", "link_params", "beats_per_flit",
           "LINK_STATUS", "LINK_COUNTERS", "FAULT_CONTROLS", "FAULT_COUNTERS"]

#: Endpoint outputs a host can read per link port.
LINK_STATUS = ("state", "in_sync")
LINK_COUNTERS = ("tx_packets", "rx_packets", "tx_replayed_blocks", "rx_bad_crc",
                 "rx_retry_rounds", "link_ups")
#: Fault injector inputs set from registers, and its counters.
FAULT_CONTROLS = ("error_threshold", "drop_threshold", "down_cmd")
FAULT_COUNTERS = ("ab_corrupted", "ab_dropped")


def beats_per_flit(pins):
    if isinstance(pins, bool) or not isinstance(pins, int) or not 2 <= pins <= FLIT_BITS // 2:
        raise ConfigError(f"pin link: pins must be an integer in 2..{FLIT_BITS // 2}, got {pins!r}")
    return -(-FLIT_BITS // pins)


def link_params(num_vls, max_packet_bytes):
    """Small endpoint parameters for a switch port carrying packets up to ``max_packet_bytes``."""
    flits = -(-(max_packet_bytes + 8) // WORD_BYTES) + 2
    max_packet_flits = 1 << max(3, (flits - 1).bit_length())
    protocol = ProtocolConfig(num_vls=num_vls, max_packet_flits=max_packet_flits,
                              max_block_flits=8, cell_flits=4)
    cells = protocol.cells_for(max_packet_flits)
    link = LinkConfig(rx_buffer_cells=max(16, 2 * cells), retry_buffer_blocks=16,
                      tx_queue_words=max(32, 2 * max_packet_flits), tx_queue_packets=4,
                      retry_req_copies=8, init_timeout=4096)
    return LinkParams.from_config(protocol, link)


class PinSerializer(wiring.Component):
    """Flit (sampled when ``tick``) -> ``pins`` data bits per clock + frame bit (``o``)."""

    def __init__(self, pins):
        self.pins = pins
        self.beats = beats_per_flit(pins)
        super().__init__({"i": In(PhySignature), "tick": In(1), "o": Out(pins + 1)})

    def elaborate(self, platform):
        m = Module()
        width = self.beats * self.pins
        shreg = Signal(width)
        first = Signal()
        with m.If(self.tick):
            m.d.sync += [shreg.eq(Cat(Const(0, width - FLIT_BITS), self.i.data)),
                         first.eq(self.i.valid)]
        with m.Else():
            m.d.sync += [shreg.eq(shreg << self.pins), first.eq(0)]
        m.d.comb += self.o.eq(Cat(shreg[width - self.pins:], first))
        return m


class PinDeserializer(wiring.Component):
    """``pins`` data bits + frame bit per clock -> a flit, presented on ``o`` until ``tick``.

    ``frames``: flits received; ``locked``: a frame mark arrived within the last two flit
    times."""

    def __init__(self, pins):
        self.pins = pins
        self.beats = beats_per_flit(pins)
        super().__init__({"i": In(pins + 1), "tick": In(1), "o": Out(PhySignature),
                          "locked": Out(1), "frames": Out(32)})

    def elaborate(self, platform):
        m = Module()
        width = self.beats * self.pins
        acc = Signal(width)
        count = Signal(range(self.beats + 1))
        data, frame = self.i[:self.pins], self.i[self.pins]
        shifted = Signal(width)
        m.d.comb += shifted.eq(Cat(data, acc[:width - self.pins]))
        flit = Signal(FLIT_BITS)
        pending = Signal()
        complete = Signal()
        with m.If(frame):
            m.d.sync += [acc.eq(data), count.eq(1)]
            if self.beats == 1:
                m.d.comb += complete.eq(1)
        with m.Elif(count != 0):
            m.d.sync += acc.eq(shifted)
            with m.If(count == self.beats - 1):
                m.d.comb += complete.eq(1)
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(self.tick):
            m.d.sync += pending.eq(0)
        with m.If(complete):
            m.d.sync += [flit.eq(shifted[width - FLIT_BITS:]), pending.eq(1),
                         self.frames.eq(self.frames + 1)]
        quiet = Signal(range(2 * self.beats + 2))
        with m.If(frame):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != 2 * self.beats + 1):
            m.d.sync += quiet.eq(quiet + 1)
        m.d.comb += [self.o.data.eq(flit), self.o.valid.eq(pending),
                     self.locked.eq(quiet != 2 * self.beats + 1)]
        return m


class LinkPort(wiring.Component):
    """One switch port's link: endpoint + fault injector + pin PHY, looped (module docstring).

    ``sw_tx``/``sw_tx_vl``/``sw_tx_vl_ready``: connect to the switch port's ``tx``, ``tx_vl``,
    ``tx_vl_ready``; ``sw_rx``: to its ``rx``. Status and counters are outputs named as in
    :data:`LINK_STATUS`, :data:`LINK_COUNTERS`, :data:`FAULT_COUNTERS` (plus ``pin_frames``,
    ``pin_locked``); fault controls are inputs named as in :data:`FAULT_CONTROLS`.
    """

    def __init__(self, num_vls, max_packet_bytes, *, pins=32, params=None):
        self.num_vls = num_vls
        self.pins = pins
        self.beats = beats_per_flit(pins)
        self.params = params or link_params(num_vls, max_packet_bytes)
        self.endpoint = LinkEndpoint(params=self.params)
        self.injector = FaultInjector(max_delay=4)
        members = {
            "sw_tx": In(packet_stream()), "sw_tx_vl": In(range(num_vls)),
            "sw_tx_vl_ready": Out(num_vls), "sw_rx": Out(packet_stream()),
            "tx_pins": Out(pins + 1), "rx_pins": In(pins + 1),
            "loopback": In(1, init=1),
            "pin_frames": Out(32), "pin_locked": Out(1),
        }
        members.update({n: Out(32) for n in LINK_STATUS + LINK_COUNTERS + FAULT_COUNTERS})
        members["error_threshold"] = In(32)
        members["drop_threshold"] = In(32)
        members["down_cmd"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        nv = self.num_vls
        tick = Signal()
        phase = Signal(range(self.beats))
        m.d.sync += phase.eq(Mux(phase == self.beats - 1, 0, phase + 1))
        m.d.comb += tick.eq(phase == self.beats - 1)
        ep, inj = self.endpoint, self.injector
        m.submodules.endpoint = EnableInserter(tick)(ep)
        m.submodules.injector = EnableInserter(tick)(inj)
        m.submodules.ser = ser = PinSerializer(self.pins)
        m.submodules.deser = deser = PinDeserializer(self.pins)

        # endpoint -> injector (a to b) -> pins -> injector (b to a) -> endpoint
        wiring.connect(m, ep.phy_tx, inj.a_in)
        m.d.comb += [ser.i.data.eq(inj.b_out.data), ser.i.valid.eq(inj.b_out.valid),
                     ser.tick.eq(tick), self.tx_pins.eq(ser.o),
                     deser.i.eq(Mux(self.loopback, ser.o, self.rx_pins)), deser.tick.eq(tick),
                     inj.b_in.data.eq(deser.o.data), inj.b_in.valid.eq(deser.o.valid),
                     self.pin_frames.eq(deser.frames), self.pin_locked.eq(deser.locked)]
        wiring.connect(m, inj.a_out, ep.phy_rx)
        m.d.comb += [ep.phy_up.eq(inj.link_up),
                     inj.error_threshold.eq(self.error_threshold),
                     inj.drop_threshold.eq(self.drop_threshold),
                     inj.down_cmd.eq(self.down_cmd),
                     inj.seed.eq(0x1234567)]
        for name in LINK_STATUS + LINK_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(ep, name))
        for name in FAULT_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(inj, name))

        # switch -> endpoint: transfers only in enabled clocks
        for v in range(nv):
            m.d.comb += [ep.tx[v].payload.eq(self.sw_tx.payload),
                         ep.tx[v].valid.eq(self.sw_tx.valid & (self.sw_tx_vl == v) & tick),
                         self.sw_tx_vl_ready[v].eq(1)]
        ready = Signal()
        with m.Switch(self.sw_tx_vl):
            for v in range(nv):
                with m.Case(v):
                    m.d.comb += ready.eq(ep.tx[v].ready)
        m.d.comb += self.sw_tx.ready.eq(ready & tick)

        # endpoint -> switch: round robin over VLs at packet boundaries, then SCNA <-> DCNA
        from .switch import DCNA_BYTE, SCNA_BYTE, _byte_slice
        m.submodules.skid = skid = SkidBuffer(packet_stream())
        cur = Signal(range(nv))
        in_packet = Signal()
        sel_valid = Signal()
        sel = Signal.like(ep.rx[0].payload)
        with m.Switch(cur):
            for v in range(nv):
                with m.Case(v):
                    m.d.comb += [sel_valid.eq(ep.rx[v].valid), sel.eq(ep.rx[v].payload),
                                 ep.rx[v].ready.eq(skid.i.ready & tick)]
        swapped = Signal.like(sel.data)
        m.d.comb += swapped.eq(sel.data)
        with m.If(sel.first):
            for b in range(2):
                m.d.comb += [swapped[_byte_slice(SCNA_BYTE + b)].eq(sel.data[_byte_slice(DCNA_BYTE + b)]),
                             swapped[_byte_slice(DCNA_BYTE + b)].eq(sel.data[_byte_slice(SCNA_BYTE + b)])]
        m.d.comb += [skid.i.payload.data.eq(swapped), skid.i.payload.nbytes.eq(sel.nbytes),
                     skid.i.payload.first.eq(sel.first), skid.i.payload.last.eq(sel.last),
                     skid.i.valid.eq(sel_valid & tick)]
        with m.If(skid.i.valid & skid.i.ready):
            m.d.sync += in_packet.eq(~sel.last)
        if nv > 1:
            with m.If(tick & ~in_packet & ~sel_valid):
                m.d.sync += cur.eq(Mux(cur == nv - 1, 0, cur + 1))
        wiring.connect(m, skid.o, wiring.flipped(self.sw_rx))
        return m
