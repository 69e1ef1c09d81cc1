"""Pin links for scale-up designs: a link-layer port of the switch over a few pins.

A :class:`LinkPort` sits on a switch port: the switch's packets go into a
:class:`~ubproto.hdl.link.endpoint.LinkEndpoint`, whose flits cross a
:class:`~ubproto.hdl.fault.injector.FaultInjector` and a simple PHY adapter
(:class:`PinSerializer` / :class:`PinDeserializer`) to the pins. What comes back is handed
to the endpoint again, and what the endpoint receives goes back into the switch port with
SCNA and DCNA swapped (like the reflector ports of :mod:`.switch`).

Two ways to use the pins (docs/scaleup.md):

* **looped on chip** (``rx_domain=None``, the default): ``tx_pins`` -> the deserializer, so
  the endpoint talks to itself: it brings the link up with its own Init blocks, and a packet
  from the host routed to the link port returns to the host after crossing the link layer
  (framing, CRC30, credits, retry) twice. ``loopback`` = 0 takes ``rx_pins`` instead (same
  clock).
* **to a second board** (``rx_domain="linkrx"``, :meth:`LinkPort.receive_in`): ``rx_pins``
  come from the peer, sampled in the clock the peer forwards with its data (the board top
  makes that domain, :mod:`ubproto.platforms.boards`). The deserializer runs in that domain
  and hands the flits to the local clock through an :class:`~amaranth.lib.fifo.AsyncFIFO`.

**Slots.** The endpoint sends one flit per enabled clock and cannot be stalled, so the
endpoint and the injector run under a clock enable (``tick``). Every ``K = ceil(160 / pins)``
clocks is a **slot**; the serializer spends a slot on one flit, MSB first over ``pins`` data
pins, plus two side pins: ``frame`` (1 in a slot's first beat, 0 otherwise: the only mark
the receiver aligns on) and ``kind`` (first beat: 1 = a *stream* slot, 0 = a *skip* slot;
second beat: the flit's valid bit; third beat: *ready*, the sender's own receiver is in RUN;
so K >= 3, at most 79 data pins). A stream slot carries what the endpoint sent in the tick
of that slot (valid or not); a skip slot is a PHY idle: the endpoint did not tick, nothing of
the link layer is in it, and the receiver throws it away.

**Rate matching.** Two boards run from their own oscillators. The link layer cannot absorb
the difference itself: its receiver takes a cycle without a valid flit, or a flit inserted
inside a block, as an error (``rx_truncated``, CRC) and starts a retry, and Null blocks are
not guaranteed to appear while data flows; so no link flit is ever dropped, inserted or
repeated. Instead the local endpoint **waits**: in a slot whose flit from the peer has not
arrived yet it does not tick (the local serializer sends a skip slot, ``pin_skips`` counts
it). Both endpoints therefore run at the rate of the slower board, the faster board skipping
about (f_fast - f_slow) / f_fast of its slots. The receiver's state (``pin_state``):

* DOWN (0): no slots arriving (``pin_locked`` = 0: cable unplugged, peer not configured, no
  forwarded clock): the endpoint ticks every slot, sees no flit and is held in DISABLED
  (``phy_up`` = 0); the FIFO is flushed.
* FILL (1): slots arrive: the endpoint still ticks every slot and is held down, while the
  FIFO collects ``fill`` of the peer's stream flits (a tick that consumes nothing creates the
  slack the two endpoints need to run back to back).
* RUN (2): the endpoint ticks only when the FIFO holds the peer's next flit, and takes it;
  ``phy_up`` = 1 while the peer says *ready* (its receiver runs too), so a peer that lost our
  pins takes our link layer down with it and both bring the link up again together. A RUN
  with no flit for ``RESYNC_SLOTS`` slots, or with no slots arriving at all, goes back to
  DOWN (``pin_resyncs``). An endpoint that gave up (bring-up state ERROR: retry and re-init
  limits exhausted) gets ``phy_up`` = 0 for a tick, which restarts its bring-up.

What got lost on the wire is counted, never hidden: ``pin_overflows`` (flits that found the
FIFO full), ``pin_misframes`` (frame marks inside a slot), ``pin_underflows`` (ticks with no
flit: impossible in this design, counted for the broken variant of the tests). The first two
happen in the receive clock and travel to the local clock with the next flit written into the
FIFO (up to ``2**LOSS_BITS - 1`` each per flit; a flood of garbage that never completes a
slot is counted when the next one does). The link layer sees such a loss as a bad block and
recovers by retry.

Project shortcut (documented in docs/hil.md): the whole switch-port packet, LPH included,
is the link's payload, so no byte realignment is needed between the switch port format
(LPH | NTH16 | ...) and the endpoint's user streams (packet bytes after the LPH that its own
framer writes). A conformant adapter strips the inner LPH (a 4-byte gearbox each way).
"""

from amaranth.hdl import Cat, Const, DomainRenamer, EnableInserter, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import AsyncFIFO, SyncFIFO
from amaranth.lib.wiring import In, Out

from ...config import LinkConfig, ProtocolConfig
from ...errors import ConfigError
from ...hdl.fault.injector import FLIT_BITS, FaultInjector, PhySignature
from ...hdl.host.streams import SkidBuffer
from ...hdl.link.common import LinkParams
from ...hdl.link.endpoint import LinkEndpoint
from ...hdl.stream import WORD_BYTES, packet_stream

__all__ = ["PinSerializer", "PinDeserializer", "LinkPort", "link_params", "beats_per_flit",
           "LINK_STATUS", "LINK_COUNTERS", "FAULT_CONTROLS", "FAULT_COUNTERS", "PIN_COUNTERS",
           "PinState", "SIDE_PINS", "RESYNC_SLOTS", "MUTANTS", "MAX_PINS"]

#: Endpoint outputs a host can read per link port.
LINK_STATUS = ("state", "in_sync")
LINK_COUNTERS = ("tx_packets", "rx_packets", "tx_replayed_blocks", "rx_bad_crc",
                 "rx_retry_rounds", "link_ups")
#: Fault injector inputs set from registers, and its counters.
FAULT_CONTROLS = ("error_threshold", "drop_threshold", "down_cmd")
FAULT_COUNTERS = ("ab_corrupted", "ab_dropped")
#: PHY adapter counters (LinkPort outputs; registers of the ``links`` block).
PIN_COUNTERS = ("pin_skips", "pin_overflows", "pin_misframes", "pin_underflows",
                "pin_resyncs")
#: Pins next to the data pins in ``tx_pins``/``rx_pins``: frame, kind (bits pins, pins + 1).
SIDE_PINS = 2
#: RUN slots without a flit from the peer before the receiver starts over (DOWN).
RESYNC_SLOTS = 32
#: Deliberately broken variants (tests): "free_running" ticks the endpoint every slot in
#: RUN whether the peer's flit is there or not (no rate matching).
MUTANTS = (None, "free_running")


class PinState:
    DOWN, FILL, RUN = range(3)
    NAMES = ("DOWN", "FILL", "RUN")


#: Most data pins: a slot needs three beats for the kind pin (stream, valid, ready).
MAX_PINS = (FLIT_BITS - 1) // 2


def beats_per_flit(pins):
    if isinstance(pins, bool) or not isinstance(pins, int) or not 2 <= pins <= MAX_PINS:
        raise ConfigError(f"pin link: pins must be an integer in 2..{MAX_PINS}, got {pins!r}")
    return -(-FLIT_BITS // pins)


def link_params(num_vls, max_packet_bytes, **link):
    """Small endpoint parameters for a switch port carrying packets up to ``max_packet_bytes``
    (``link``: :class:`~ubproto.config.LinkConfig` fields to change, e.g. shorter timeouts
    for a simulation)."""
    flits = -(-(max_packet_bytes + 8) // WORD_BYTES) + 2
    max_packet_flits = 1 << max(3, (flits - 1).bit_length())
    protocol = ProtocolConfig(num_vls=num_vls, max_packet_flits=max_packet_flits,
                              max_block_flits=8, cell_flits=4)
    cells = protocol.cells_for(max_packet_flits)
    link = LinkConfig(rx_buffer_cells=max(16, 2 * cells), retry_buffer_blocks=16,
                      tx_queue_words=max(32, 2 * max_packet_flits), tx_queue_packets=4,
                      **{"retry_req_copies": 8, "init_timeout": 4096, **link})
    return LinkParams.from_config(protocol, link)


class PinSerializer(wiring.Component):
    """One slot per ``load``: the flit ``i`` (a stream slot, ``stream`` = 1) or nothing (a
    skip slot), as ``pins`` data bits per clock MSB first, then frame and kind (``o``; see
    the module docstring). ``ready``: this end's receiver runs (sent in every slot)."""

    def __init__(self, pins):
        self.pins = pins
        self.beats = beats_per_flit(pins)
        super().__init__({"i": In(PhySignature), "load": In(1), "stream": In(1),
                          "ready": In(1), "o": Out(pins + SIDE_PINS)})

    def elaborate(self, platform):
        m = Module()
        width = self.beats * self.pins
        shreg = Signal(width)
        first = Signal()
        kind = Signal(3)          # bit 2 goes out first (stream), then valid, then ready
        with m.If(self.load):
            m.d.sync += [shreg.eq(Mux(self.stream, Cat(Const(0, width - FLIT_BITS), self.i.data), 0)),
                         first.eq(1),
                         kind.eq(Cat(self.ready, self.i.valid & self.stream, self.stream))]
        with m.Else():
            m.d.sync += [shreg.eq(shreg << self.pins), first.eq(0), kind.eq(kind << 1)]
        m.d.comb += self.o.eq(Cat(shreg[width - self.pins:], first, kind[2]))
        return m


class PinDeserializer(wiring.Component):
    """``pins`` data bits + frame + kind per clock -> one slot per frame mark.

    ``done`` is high for one clock when a slot is complete: ``stream`` (a stream slot),
    ``valid`` and ``data`` (its flit), ``ready`` (the sender's receiver runs). ``misframe``:
    a frame mark inside a slot (the partial slot is dropped and the receiver realigns on the
    new mark)."""

    def __init__(self, pins):
        self.pins = pins
        self.beats = beats_per_flit(pins)
        super().__init__({"i": In(pins + SIDE_PINS), "done": Out(1), "stream": Out(1),
                          "valid": Out(1), "ready": Out(1), "data": Out(FLIT_BITS),
                          "misframe": Out(1)})

    def elaborate(self, platform):
        m = Module()
        k = self.beats
        width = k * self.pins
        acc = Signal(width)
        count = Signal(range(k + 1))
        data_in, frame, kind = self.i[:self.pins], self.i[self.pins], self.i[self.pins + 1]
        shifted = Signal(width)
        m.d.comb += shifted.eq(Cat(data_in, acc[:width - self.pins]))
        s_stream = Signal()
        s_valid = Signal()
        s_ready = Signal()
        complete = Signal()
        m.d.sync += [self.done.eq(0), self.misframe.eq(0)]
        with m.If(frame):
            m.d.sync += [acc.eq(data_in), count.eq(1), s_stream.eq(kind),
                         self.misframe.eq(count != 0)]
        with m.Elif(count != 0):
            m.d.sync += acc.eq(shifted)
            with m.If(count == 1):
                m.d.sync += s_valid.eq(kind)
            with m.If(count == 2):
                m.d.sync += s_ready.eq(kind)
            with m.If(count == k - 1):
                m.d.comb += complete.eq(1)
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(complete):
            m.d.sync += [self.done.eq(1), self.data.eq(shifted[width - FLIT_BITS:]),
                         self.stream.eq(s_stream), self.valid.eq(s_stream & s_valid),
                         self.ready.eq(kind if k == 3 else s_ready)]
        return m


#: Saturating count of losses carried with the next flit written into the FIFO.
LOSS_BITS = 4
#: One entry of the elastic FIFO: the peer's flit, and what was lost before it (flits that
#: found the FIFO full, frame marks inside a slot; each up to 2**LOSS_BITS - 1).
_Entry = data.StructLayout({"data": FLIT_BITS, "valid": 1, "ready": 1, "lost": LOSS_BITS,
                            "misframed": LOSS_BITS})


class _PinReceiver(wiring.Component):
    """Deserializer + FIFO write side, in the receive clock (renamed to it by LinkPort)."""

    def __init__(self, pins):
        self.pins = pins
        super().__init__({"i": In(pins + SIDE_PINS), "w_en": Out(1), "w_rdy": In(1),
                          "w_data": Out(_Entry), "toggle": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.deser = deser = PinDeserializer(self.pins)
        m.d.comb += deser.i.eq(self.i)
        top = (1 << LOSS_BITS) - 1
        lost = Signal(LOSS_BITS)
        misframed = Signal(LOSS_BITS)
        write = Signal()
        m.d.comb += [write.eq(deser.done & deser.stream),
                     self.w_en.eq(write),
                     self.w_data.data.eq(deser.data), self.w_data.valid.eq(deser.valid),
                     self.w_data.ready.eq(deser.ready),
                     self.w_data.lost.eq(lost), self.w_data.misframed.eq(misframed)]
        with m.If(deser.done):
            m.d.sync += self.toggle.eq(~self.toggle)       # "a slot arrived", for pin_locked
        with m.If(write & self.w_rdy):
            m.d.sync += [lost.eq(0), misframed.eq(0)]
        with m.Else():
            with m.If(write & (lost != top)):
                m.d.sync += lost.eq(lost + 1)
        with m.If(deser.misframe & (misframed != top)):
            m.d.sync += misframed.eq(misframed + 1)
        return m


class LinkPort(wiring.Component):
    """One switch port's link: endpoint + fault injector + pin PHY (module docstring).

    ``sw_tx``/``sw_tx_vl``/``sw_tx_vl_ready``: connect to the switch port's ``tx``, ``tx_vl``,
    ``tx_vl_ready``; ``sw_rx``: to its ``rx``. Status and counters are outputs named as in
    :data:`LINK_STATUS`, :data:`LINK_COUNTERS`, :data:`FAULT_COUNTERS`, :data:`PIN_COUNTERS`
    (plus ``pin_frames``: the peer's valid flits handed to the endpoint, ``pin_locked``:
    slots arriving, ``pin_state``: :class:`PinState`); fault controls are inputs named as
    in :data:`FAULT_CONTROLS`.

    ``tx_pins``/``rx_pins``: ``Cat(data[pins], frame, kind)`` per clock. ``rx_domain``: the
    clock domain ``rx_pins`` are sampled in (the peer's forwarded clock), or ``None`` for
    the on-chip loop (see :meth:`receive_in`). ``fill``: peer flits the FIFO collects
    before the endpoint runs; ``depth``: FIFO entries (a power of 2 above ``2 * fill + 4``).
    """

    def __init__(self, num_vls, max_packet_bytes, *, pins=32, params=None, rx_domain=None,
                 fill=4, depth=16, mutant=None):
        self.num_vls = num_vls
        self.pins = pins
        self.beats = beats_per_flit(pins)
        if mutant not in MUTANTS:
            raise ConfigError(f"pin link: mutant must be one of {MUTANTS}, got {mutant!r}")
        if not (isinstance(fill, int) and 1 <= fill and isinstance(depth, int) and
                depth >= 2 * fill + 4 and depth & (depth - 1) == 0):
            raise ConfigError(f"pin link: need fill >= 1 and depth a power of 2 >= 2 * fill + 4,"
                              f" got fill={fill!r}, depth={depth!r}")
        self.fill, self.depth, self.mutant = fill, depth, mutant
        self.rx_domain = rx_domain
        self.params = params or link_params(num_vls, max_packet_bytes)
        self.endpoint = LinkEndpoint(params=self.params)
        self.injector = FaultInjector(max_delay=4)
        self.serializer = PinSerializer(pins)
        #: The endpoint's clock enable (one per slot at most), for tests.
        self.tick = Signal()
        members = {
            "sw_tx": In(packet_stream()), "sw_tx_vl": In(range(num_vls)),
            "sw_tx_vl_ready": Out(num_vls), "sw_rx": Out(packet_stream()),
            "tx_pins": Out(pins + SIDE_PINS), "rx_pins": In(pins + SIDE_PINS),
            "loopback": In(1, init=1),
            "pin_frames": Out(32), "pin_locked": Out(1), "pin_state": Out(2),
        }
        members.update({n: Out(32) for n in LINK_STATUS + LINK_COUNTERS + FAULT_COUNTERS +
                        PIN_COUNTERS})
        members["error_threshold"] = In(32)
        members["drop_threshold"] = In(32)
        members["down_cmd"] = In(1)
        super().__init__(members)

    def receive_in(self, domain):
        """Sample ``rx_pins`` in clock domain ``domain`` (a board-to-board link) instead of
        looping the pins on chip; call before elaboration. ``loopback`` then has no effect."""
        self.rx_domain = domain
        return self

    def elaborate(self, platform):
        m = Module()
        nv = self.num_vls
        k = self.beats
        tick = self.tick
        phase = Signal(range(k))
        slot = Signal()
        m.d.sync += phase.eq(Mux(phase == k - 1, 0, phase + 1))
        m.d.comb += slot.eq(phase == k - 1)
        ep, inj = self.endpoint, self.injector
        m.submodules.endpoint = EnableInserter(tick)(ep)
        m.submodules.injector = EnableInserter(tick)(inj)
        m.submodules.ser = ser = self.serializer

        # --- receive side: pins -> deserializer -> FIFO (in the receive clock) ----------------
        width = len(Signal(_Entry).as_value())
        rx = _PinReceiver(self.pins)
        if self.rx_domain is None or self.rx_domain == "sync":
            m.submodules.rx = rx
            m.submodules.fifo = fifo = SyncFIFO(width=width, depth=self.depth)
            rx_in = Mux(self.loopback, ser.o, self.rx_pins) if self.rx_domain is None \
                else self.rx_pins
            m.d.comb += rx.i.eq(rx_in)
        else:
            m.submodules.rx = DomainRenamer(self.rx_domain)(rx)
            m.submodules.fifo = fifo = AsyncFIFO(width=width, depth=self.depth,
                                                 w_domain=self.rx_domain, r_domain="sync")
            m.d.comb += rx.i.eq(self.rx_pins)
        m.d.comb += [fifo.w_en.eq(rx.w_en), fifo.w_data.eq(rx.w_data), rx.w_rdy.eq(fifo.w_rdy)]

        # --- slots arriving? (a toggle per slot from the receive clock) --------------------
        toggle = Signal()
        m.submodules.toggle_sync = FFSynchronizer(rx.toggle, toggle)
        last_toggle = Signal()
        m.d.sync += last_toggle.eq(toggle)
        quiet_limit = 3 * k + 8
        quiet = Signal(range(quiet_limit + 1), init=quiet_limit)
        with m.If(toggle != last_toggle):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != quiet_limit):
            m.d.sync += quiet.eq(quiet + 1)
        alive = Signal()
        m.d.comb += [alive.eq(quiet != quiet_limit), self.pin_locked.eq(alive)]

        # --- elastic read side: when the endpoint ticks and what it gets -----------------------
        head = Signal(_Entry)
        m.d.comb += head.eq(fifo.r_data)
        state = Signal(2)
        m.d.comb += self.pin_state.eq(state)
        running = Signal()
        m.d.comb += running.eq(state == PinState.RUN)
        waiting = Signal(range(RESYNC_SLOTS + 1))
        pop = Signal()
        with m.Switch(state):
            with m.Case(PinState.DOWN):
                m.d.comb += [tick.eq(slot), pop.eq(fifo.r_rdy)]          # flush
                with m.If(alive):
                    m.d.sync += state.eq(PinState.FILL)
            with m.Case(PinState.FILL):
                m.d.comb += tick.eq(slot)
                with m.If(~alive):
                    m.d.sync += state.eq(PinState.DOWN)
                with m.Elif(fifo.r_level >= self.fill):
                    m.d.sync += [state.eq(PinState.RUN), waiting.eq(0)]
            with m.Case(PinState.RUN):
                if self.mutant == "free_running":
                    m.d.comb += tick.eq(slot)
                else:
                    m.d.comb += tick.eq(slot & fifo.r_rdy)
                m.d.comb += pop.eq(tick & fifo.r_rdy)
                with m.If(slot):
                    m.d.sync += waiting.eq(Mux(fifo.r_rdy, 0, waiting + 1))
                with m.If(~alive | (slot & ~fifo.r_rdy & (waiting == RESYNC_SLOTS - 1))):
                    m.d.sync += [state.eq(PinState.DOWN),
                                 self.pin_resyncs.eq(self.pin_resyncs + 1)]
        m.d.comb += fifo.r_en.eq(pop)
        peer_ready = Signal()
        with m.If(~running):
            m.d.sync += peer_ready.eq(0)
        with m.Elif(pop):
            m.d.sync += peer_ready.eq(head.ready)

        def count(name, cond):
            counter = getattr(self, name)
            with m.If(cond):
                m.d.sync += counter.eq(counter + 1)
        count("pin_frames", running & pop & head.valid)
        count("pin_skips", running & slot & ~tick)
        count("pin_underflows", running & tick & ~fifo.r_rdy)
        with m.If(pop):
            m.d.sync += [self.pin_overflows.eq(self.pin_overflows + head.lost),
                         self.pin_misframes.eq(self.pin_misframes + head.misframed)]

        # --- endpoint -> injector (a to b) -> serializer; FIFO -> injector (b to a) -> endpoint
        wiring.connect(m, ep.phy_tx, inj.a_in)
        m.d.comb += [ser.i.data.eq(inj.b_out.data), ser.i.valid.eq(inj.b_out.valid),
                     ser.load.eq(slot), ser.stream.eq(tick), ser.ready.eq(running),
                     self.tx_pins.eq(ser.o),
                     inj.b_in.data.eq(head.data),
                     inj.b_in.valid.eq(running & fifo.r_rdy & head.valid)]
        wiring.connect(m, inj.a_out, ep.phy_rx)
        from ...hdl.link.bringup import LinkState
        m.d.comb += [ep.phy_up.eq(inj.link_up & running & peer_ready &
                                  (ep.state != LinkState.ERROR)),
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
