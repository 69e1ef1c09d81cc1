"""Ethernet MAC at the GMII level: one byte per clock, preamble/SFD, FCS, padding, IFG.

:class:`MacRx` turns GMII receive bytes into frames on a byte stream and says, on the
frame's last byte, whether the frame is good; :class:`MacTx` frames a byte stream for GMII
transmission. Both run in one clock domain (125 MHz for 1000BASE-T; :mod:`.rgmii` turns
GMII into the RGMII pins and back).

The FCS is the catalog's Ethernet CRC-32 (``amaranth.lib.crc.catalog.CRC32_ETHERNET``):
the receiver runs every byte after the SFD, FCS included, through it and checks the
residue (``match_detected``); the transmitter appends the CRC least significant byte first,
which is how that reflected algorithm's result goes on the wire.

Receive, and why it looks the way it does:

* The stream out is not back-pressured: GMII cannot wait. A frame buffer behind the MAC
  (:class:`~.buffer.FrameBuffer`) keeps only frames the MAC vouches for.
* The GMII inputs pass one register first (with the "is SFD" and "is preamble" decisions
  made in front of it), so the receiver's state and the FCS register's start/enable come
  from flip-flops: that is what lets the MAC close timing at 125 MHz.
* The FCS is only known after the frame, so bytes leave five bytes late: when the frame
  ends, the delay line holds the last data byte and the four FCS bytes, and the last data
  byte leaves with ``last`` and the verdict in ``error``. The FCS never leaves the MAC.
* A frame is bad (``error``, counted once, by the first reason in this order) if the PHY
  signalled an error (``rx_er``), if it is shorter than 64 bytes (a runt), longer than
  ``max_frame`` bytes, or its FCS is wrong. Bytes before the SFD that are not preamble
  (a frame without SFD) are counted as ``bad_preamble`` and skipped.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import crc, wiring
from amaranth.lib.wiring import In, Out

from ....errors import ConfigError
from ..streams import byte_stream

__all__ = ["gmii_rx_signature", "gmii_tx_signature", "MacRx", "MacTx", "PREAMBLE_BYTE",
           "SFD_BYTE", "PREAMBLE_BYTES", "FCS_BYTES", "MIN_FRAME", "MAX_FRAME", "IFG_BYTES",
           "MIN_PAYLOAD_FRAME", "ETH_FCS", "RX_COUNTERS", "TX_COUNTERS"]

PREAMBLE_BYTE = 0x55
SFD_BYTE = 0xD5
PREAMBLE_BYTES = 7
FCS_BYTES = 4
#: Shortest legal frame, FCS included (IEEE 802.3).
MIN_FRAME = 64
#: Frame bytes before the FCS a transmitter pads short frames to.
MIN_PAYLOAD_FRAME = MIN_FRAME - FCS_BYTES
#: Longest frame accepted by default, FCS included (1518 + an 802.1Q tag).
MAX_FRAME = 1522
#: Inter-frame gap, in byte times.
IFG_BYTES = 12
ETH_FCS = crc.catalog.CRC32_ETHERNET
#: Bytes the receiver holds back: the FCS plus the last data byte (see the docstring).
_RX_DELAY = FCS_BYTES + 1
_COUNTER_BITS = 32

#: Counters of :class:`MacRx`, in the order of their ``counters`` port.
RX_COUNTERS = ("frames", "drops_phy_error", "drops_runt", "drops_oversize", "drops_fcs",
               "bad_preamble")
TX_COUNTERS = ("frames", "underruns")


def gmii_rx_signature():
    """GMII receive side, as the PHY drives it (the MAC has ``In(gmii_rx_signature())``)."""
    return wiring.Signature({"rx_data": Out(8), "rx_dv": Out(1), "rx_er": Out(1)})


def gmii_tx_signature():
    """GMII transmit side, as the MAC drives it."""
    return wiring.Signature({"tx_data": Out(8), "tx_en": Out(1), "tx_er": Out(1)})


class MacRx(wiring.Component):
    """GMII in -> frames out (see the module docstring).

    Members
    -------
    gmii : In(gmii_rx_signature())
    frames : Out(byte_stream())  frame bytes without preamble/SFD/FCS; ``ready`` is ignored
    count_<name> : Out(32) for each name in RX_COUNTERS: good frames and drops by reason
    """

    def __init__(self, *, max_frame=MAX_FRAME):
        if not MIN_FRAME <= max_frame <= 16383:
            raise ConfigError(f"MacRx max_frame must be in {MIN_FRAME}..16383, got {max_frame}")
        self.max_frame = max_frame
        super().__init__({
            "gmii": In(gmii_rx_signature()),
            "frames": Out(byte_stream()),
            **{f"count_{name}": Out(_COUNTER_BITS) for name in RX_COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fcs = fcs = ETH_FCS(data_width=8).create()
        gmii = self.gmii
        count = {name: getattr(self, f"count_{name}") for name in RX_COUNTERS}

        # Input stage (one clock of latency): the GMII byte and what it is (SFD, preamble)
        # are registered here, so the receiver's state and the FCS register's start/enable
        # come from flip-flops. Comparing the byte in the same clock as the state decision
        # and the CRC update was the eth domain's critical path at 125 MHz (8.65 ns).
        data = Signal(8)
        dv = Signal()
        er = Signal()
        is_sfd = Signal()
        is_preamble = Signal()
        m.d.sync += [data.eq(gmii.rx_data), dv.eq(gmii.rx_dv), er.eq(gmii.rx_er),
                     is_sfd.eq(gmii.rx_data == SFD_BYTE),
                     is_preamble.eq(gmii.rx_data == PREAMBLE_BYTE)]

        # Receiver state as two flags instead of an FSM, so the next state is an expression
        # the FCS enable below can be computed from one clock ahead.
        in_frame = Signal()      # between the SFD and the end of rx_dv
        skipping = Signal()      # a frame that did not start with preamble + SFD
        idle = ~in_frame & ~skipping
        starts = idle & dv & is_sfd
        bad_start = idle & dv & ~is_sfd & ~is_preamble
        in_frame_next = Signal()
        m.d.comb += in_frame_next.eq(starts | (in_frame & dv))
        m.d.sync += [in_frame.eq(in_frame_next),
                     skipping.eq(bad_start | (skipping & dv))]
        # The FCS takes a byte in every clock of the frame after the SFD: registered from
        # the next state and the next byte's rx_dv (the input stage's D input).
        fcs_take = Signal()
        m.d.sync += fcs_take.eq(in_frame_next & gmii.rx_dv)
        m.d.comb += [fcs.data.eq(data), fcs.valid.eq(fcs_take), fcs.start.eq(idle)]

        delay = [Signal(8, name=f"delay{i}") for i in range(_RX_DELAY)]   # delay[0] newest
        length = Signal(range(self.max_frame + 2))   # saturates one past the limit
        phy_error = Signal()

        # The byte leaving is always the oldest in the delay line (combinational, so the
        # closing byte with the verdict leaves in the clock after the frame ends, below).
        m.d.comb += self.frames.payload.data.eq(delay[_RX_DELAY - 1])

        with m.If(starts):
            m.d.sync += [length.eq(0), phy_error.eq(er)]
        with m.If(bad_start):
            m.d.sync += count["bad_preamble"].eq(count["bad_preamble"] + 1)
        with m.If(in_frame & dv):
            m.d.sync += [delay[0].eq(data),
                         *(delay[i].eq(delay[i - 1]) for i in range(1, _RX_DELAY))]
            with m.If(length <= self.max_frame):
                m.d.sync += length.eq(length + 1)
            with m.If(er):
                m.d.sync += phy_error.eq(1)
            # The oldest byte leaves once it is known not to be FCS or the last byte.
            with m.If(length >= _RX_DELAY):
                m.d.comb += self.frames.valid.eq(1)
        # End of frame, one clock after rx_dv fell: the FCS comparison is registered first
        # (``fcs_ok``), so the verdict and everything it enables downstream start from
        # flip-flops. In the clock rx_dv falls the residue covers every byte; comparing it
        # there and feeding the result to the frame buffer's enables was the eth domain's
        # critical path on seed 2 (8.32 ns at 125 MHz). The extra clock is free: nothing
        # in the frame changes after rx_dv falls, and a new frame needs a preamble byte
        # before its SFD (``starts`` can be no earlier than the second clock after).
        fcs_ok = Signal()
        ending = Signal()
        m.d.sync += [fcs_ok.eq(fcs.match_detected), ending.eq(in_frame & ~dv)]
        with m.If(ending):
            runt = length < MIN_FRAME
            oversize = length > self.max_frame
            bad_fcs = ~fcs_ok
            with m.If(phy_error):
                m.d.sync += count["drops_phy_error"].eq(count["drops_phy_error"] + 1)
            with m.Elif(runt):
                m.d.sync += count["drops_runt"].eq(count["drops_runt"] + 1)
            with m.Elif(oversize):
                m.d.sync += count["drops_oversize"].eq(count["drops_oversize"] + 1)
            with m.Elif(bad_fcs):
                m.d.sync += count["drops_fcs"].eq(count["drops_fcs"] + 1)
            with m.Else():
                m.d.sync += count["frames"].eq(count["frames"] + 1)
            # One closing byte carries the verdict (for a frame shorter than the delay
            # line it is the only byte, and always an error).
            m.d.comb += [self.frames.valid.eq(1), self.frames.payload.last.eq(1),
                         self.frames.payload.error.eq(phy_error | runt | oversize | bad_fcs)]
        return m


class MacTx(wiring.Component):
    """Frames -> GMII: preamble, SFD, data, zero padding to 60 bytes, FCS, inter-frame gap.

    ``frames`` must deliver a frame's bytes back to back once its first byte was taken (feed
    it from a store-and-forward buffer). A byte missing mid-frame is an underrun: the MAC
    sends ``tx_er`` (the PHY corrupts the frame so nobody accepts it), counts it, and drops the
    rest of that frame.
    """

    def __init__(self):
        super().__init__({
            "frames": In(byte_stream()),
            "gmii": Out(gmii_tx_signature()),
            **{f"count_{name}": Out(_COUNTER_BITS) for name in TX_COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fcs = fcs = ETH_FCS(data_width=8).create()
        gmii, frames = self.gmii, self.frames
        count = Signal(range(max(PREAMBLE_BYTES, MIN_PAYLOAD_FRAME, IFG_BYTES) + 1))
        m.d.comb += fcs.data.eq(gmii.tx_data)

        with m.FSM(name="tx"):
            with m.State("IDLE"):
                with m.If(frames.valid):
                    m.d.sync += count.eq(0)
                    m.d.comb += fcs.start.eq(1)
                    m.next = "PREAMBLE"
            with m.State("PREAMBLE"):
                m.d.comb += [gmii.tx_en.eq(1), gmii.tx_data.eq(PREAMBLE_BYTE)]
                m.d.sync += count.eq(count + 1)
                with m.If(count == PREAMBLE_BYTES - 1):
                    m.next = "SFD"
            with m.State("SFD"):
                m.d.comb += [gmii.tx_en.eq(1), gmii.tx_data.eq(SFD_BYTE)]
                m.d.sync += count.eq(0)
                m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [gmii.tx_en.eq(1), frames.ready.eq(1), fcs.valid.eq(1),
                             gmii.tx_data.eq(frames.payload.data)]
                with m.If(count < MIN_PAYLOAD_FRAME):
                    m.d.sync += count.eq(count + 1)
                with m.If(~frames.valid):
                    m.d.comb += gmii.tx_er.eq(1)
                    m.d.sync += self.count_underruns.eq(self.count_underruns + 1)
                    m.next = "ABORT"
                with m.Elif(frames.payload.last):
                    with m.If(count + 1 < MIN_PAYLOAD_FRAME):
                        m.next = "PAD"
                    with m.Else():
                        m.d.sync += count.eq(0)
                        m.next = "FCS"
            with m.State("PAD"):
                m.d.comb += [gmii.tx_en.eq(1), gmii.tx_data.eq(0), fcs.valid.eq(1)]
                m.d.sync += count.eq(count + 1)
                with m.If(count == MIN_PAYLOAD_FRAME - 1):
                    m.d.sync += count.eq(0)
                    m.next = "FCS"
            with m.State("FCS"):
                m.d.comb += [gmii.tx_en.eq(1),
                             gmii.tx_data.eq(fcs.crc.word_select(count[:2], 8))]
                m.d.sync += count.eq(count + 1)
                with m.If(count == FCS_BYTES - 1):
                    m.d.sync += [count.eq(0), self.count_frames.eq(self.count_frames + 1)]
                    m.next = "GAP"
            with m.State("ABORT"):       # drop the rest of an underrun frame
                m.d.comb += frames.ready.eq(1)
                with m.If(frames.valid & frames.payload.last):
                    m.d.sync += count.eq(0)
                    m.next = "GAP"
            with m.State("GAP"):
                m.d.sync += count.eq(count + 1)
                with m.If(count == IFG_BYTES - 1):
                    m.next = "IDLE"
        return m
