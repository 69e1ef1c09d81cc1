"""The reaction point: CNP reaction algorithms, a hardware rate limiter, a rate-controlled source.

Reaction-algorithm interface (:func:`reaction_signature`; docs/congestion.md, "Writing a
reaction algorithm"). An algorithm is a component with:

==============  ========================  ==================================================
member          direction, shape          meaning
==============  ========================  ==================================================
cnp             In(CnpEvent)              a CNP arrived this clock: ``valid``, ``level``, ``loc``
sent_bytes      In(SENT_BITS)             bytes the source put on the wire this clock
rate            Out(rate_bits)            allowed rate, bytes/clock, ``rate_frac_bits`` fraction
may_send        Out(1)                    extra gate (a window-based algorithm closes it);
                                          rate-based algorithms tie it to 1
==============  ========================  ==================================================

:class:`Dcqcn` is the worked example: DCQCN's reaction point (Zhu et al., SIGCOMM 2015) in
fixed point, one update per clock, every parameter in clock cycles and bytes
(:class:`DcqcnParams`):

* on a CNP: target ``Rt = Rc``; ``Rc = max(Rc * (1 - alpha/2), Rmin)``;
  ``alpha = (1 - g) alpha + g``; the alpha timer, increase timer, byte counter and both
  stage counters restart;
* every ``alpha_timer`` clocks without a CNP: ``alpha = (1 - g) alpha``;
* an increase event -- the increase timer expiring every ``increase_timer`` clocks, or the
  byte counter passing ``byte_counter`` bytes -- advances its stage counter T or BC
  (saturating at F + 1) and then: while ``max(T, BC) <= F`` fast recovery (Rt unchanged);
  once ``min(T, BC) > F`` hyper increase ``Rt += R_HAI``; otherwise additive increase
  ``Rt += R_AI``; Rt is capped at the line rate; finally ``Rc = (Rt + Rc) / 2``, rounded up
  (rounded down, Rc would stop one LSB short of Rt and never return to line rate -- the
  ``cover_dcqcn_recovered`` cover found this). A timer and a byte event in the same clock
  count as one update advancing both counters.

``g = 2^-g_shift`` (so ``(1 - g) alpha`` is a shift and a subtract); ``Rc * alpha`` is the one
multiplier. :class:`DcqcnModel` is the same arithmetic in Python, for cycle-by-cycle checks.

Formal properties (named; ``ubproto prove cc-dcqcn``):

* ``dcqcn_rate_within_bounds``    Rmin <= Rc <= line rate, and the same for Rt
* ``dcqcn_alpha_at_most_one``     0 <= alpha <= 1
* ``cover_dcqcn_at_floor``        Rc reaches Rmin
* ``cover_dcqcn_recovered``       Rc is back at line rate after having been cut
"""

import dataclasses
from dataclasses import dataclass

from amaranth.hdl import Assert, Cover, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ...errors import ConfigError
from ..proto.formats import CNP, CTPH, LPH, LPH_BYTES, NTH16, RTPH, Cfg, CtpOpcode, Nlp, RtpOpcode
from ..proto.layouts import header_view
from ..stream import WORD_BYTES, packet_stream
from ...verify.formal import FreeInputs
from .cnp import CNP_OFFSET, TRANSPORT_OFFSET, field_slice

__all__ = ["CnpEvent", "SENT_BITS", "reaction_signature", "DcqcnParams", "Dcqcn", "DcqcnModel",
           "RateLimiter", "RateControlledSource", "DCQCN_MUTANTS", "DCQCN_PROPERTIES",
           "formal_dcqcn"]

COUNTER_BITS = 32
#: Width of ``sent_bytes`` (at most one word per clock).
SENT_BITS = bits_for(WORD_BYTES)

#: A CNP as the reaction algorithm sees it.
CnpEvent = data.StructLayout({
    "valid": 1,
    "level": CNP.field("level").width,
    "loc": CNP.field("loc").width,
})

DCQCN_PROPERTIES = {
    "dcqcn_rate_within_bounds": "Rmin <= Rc, Rt <= line rate",
    "dcqcn_alpha_at_most_one": "alpha never exceeds 1.0",
    "cover_dcqcn_at_floor": "the rate can be cut down to Rmin",
    "cover_dcqcn_recovered": "the rate can recover to line rate after a cut",
}

DCQCN_MUTANTS = {
    "no_floor": "a rate cut is not clamped at Rmin",
    "no_ceiling": "additive/hyper increase is not capped at the line rate",
}


def reaction_signature(rate_bits):
    """The members every reaction algorithm has (see the module docstring)."""
    return wiring.Signature({
        "cnp": In(CnpEvent),
        "sent_bytes": In(SENT_BITS),
        "rate": Out(rate_bits),
        "may_send": Out(1),
    })


@dataclass(frozen=True)
class DcqcnParams:
    """DCQCN reaction-point parameters in clocks and bytes (see :mod:`ubproto.config`,
    ``CongestionConfig``, for the defaults and where they come from).

    Rates are bytes per clock; they are stored in fixed point with ``rate_frac_bits``.
    """
    line_rate: float = WORD_BYTES
    min_rate: float = WORD_BYTES / 1000
    rate_ai: float = WORD_BYTES / 400
    rate_hai: float = WORD_BYTES / 80
    g_shift: int = 8
    alpha_bits: int = 10
    alpha_timer: int = 5500
    increase_timer: int = 5500
    byte_counter: int = 10 << 20
    fast_recovery_steps: int = 5
    rate_frac_bits: int = 16

    def __post_init__(self):
        def need(cond, what):
            if not cond:
                raise ConfigError(f"DCQCN: {what} ({self})")
        need(0 < self.min_rate <= self.line_rate, "need 0 < min_rate <= line_rate")
        need(self.rate_ai > 0 and self.rate_hai > 0, "rate_ai and rate_hai must be > 0")
        need(0 < self.g_shift < self.alpha_bits, "need 0 < g_shift < alpha_bits")
        need(self.alpha_timer >= 1 and self.increase_timer >= 1, "timers must be >= 1 clock")
        need(self.byte_counter >= WORD_BYTES, f"byte_counter must be >= {WORD_BYTES}")
        need(self.fast_recovery_steps >= 1, "fast_recovery_steps must be >= 1")
        need(self.fixed(self.min_rate) >= 1, "min_rate vanishes at this rate_frac_bits")

    @classmethod
    def from_config(cls, congestion, line_bytes_per_cycle=WORD_BYTES):
        """DCQCN parameters of a ``CongestionConfig`` (rates given per 1000 clocks there)."""
        per_clock = 1 / 1000
        return cls(line_rate=line_bytes_per_cycle,
                   min_rate=congestion.dcqcn_min_rate_per_kclk * per_clock,
                   rate_ai=congestion.dcqcn_rate_ai_per_kclk * per_clock,
                   rate_hai=congestion.dcqcn_rate_hai_per_kclk * per_clock,
                   g_shift=congestion.dcqcn_g_shift, alpha_bits=congestion.dcqcn_alpha_bits,
                   alpha_timer=congestion.dcqcn_alpha_timer_cycles,
                   increase_timer=congestion.dcqcn_increase_timer_cycles,
                   byte_counter=congestion.dcqcn_byte_counter_bytes,
                   fast_recovery_steps=congestion.dcqcn_fast_recovery_steps)

    def fixed(self, rate):
        return round(rate * (1 << self.rate_frac_bits))

    @property
    def rate_bits(self):
        return bits_for(self.fixed(self.line_rate))

    def registers(self):
        """The fixed-point constants the hardware and the model use."""
        return {"line": self.fixed(self.line_rate), "min": self.fixed(self.min_rate),
                "ai": max(1, self.fixed(self.rate_ai)), "hai": max(1, self.fixed(self.rate_hai)),
                "one": 1 << self.alpha_bits}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


class DcqcnModel:
    """Cycle-exact Python model of :class:`Dcqcn` (same fixed-point arithmetic)."""

    def __init__(self, params: DcqcnParams):
        self.p = params
        r = params.registers()
        self.line, self.min, self.ai, self.hai, self.one = (r["line"], r["min"], r["ai"],
                                                            r["hai"], r["one"])
        self.rc = self.rt = self.line
        self.alpha = self.one
        self.alpha_timer = self.increase_timer = self.byte_count = 0
        self.t = self.bc = 0

    def step(self, cnp=False, sent_bytes=0):
        """Advance one clock; returns the rate offered during that clock (before the update)."""
        p, rate = self.p, self.rc
        decay = self.alpha >> p.g_shift
        if cnp:
            self.rt = self.rc
            cut = (self.rc * self.alpha) >> (p.alpha_bits + 1)
            self.rc = max(self.rc - cut, self.min)
            self.alpha = self.alpha - decay + (self.one >> p.g_shift)
            self.alpha_timer = self.increase_timer = self.byte_count = 0
            self.t = self.bc = 0
            return rate
        self.alpha_timer += 1
        if self.alpha_timer == p.alpha_timer:
            self.alpha_timer = 0
            self.alpha -= decay
        self.increase_timer += 1
        timer_event = self.increase_timer == p.increase_timer
        if timer_event:
            self.increase_timer = 0
        total = self.byte_count + sent_bytes
        byte_event = total >= p.byte_counter
        self.byte_count = total - p.byte_counter if byte_event else total
        if timer_event or byte_event:
            cap = p.fast_recovery_steps + 1
            self.t = min(self.t + timer_event, cap)
            self.bc = min(self.bc + byte_event, cap)
            if max(self.t, self.bc) > p.fast_recovery_steps:
                step = self.hai if min(self.t, self.bc) > p.fast_recovery_steps else self.ai
                self.rt = min(self.rt + step, self.line)
            self.rc = (self.rt + self.rc + 1) >> 1
        return rate


class Dcqcn(wiring.Component):
    """DCQCN reaction point (see the module docstring); members of :func:`reaction_signature`
    plus ``alpha`` (Out, 1.0 = ``1 << alpha_bits``) and ``target`` (Out, Rt) for observation."""

    def __init__(self, params: DcqcnParams = DcqcnParams(), *, mutant=None):
        if mutant is not None and mutant not in DCQCN_MUTANTS:
            raise ConfigError(f"Dcqcn: unknown mutant {mutant!r}; known: {', '.join(DCQCN_MUTANTS)}")
        self.params = params
        self.mutant = mutant
        rate_bits = params.rate_bits
        members = dict(reaction_signature(rate_bits).members)
        members.update({
            "alpha": Out(params.alpha_bits + 1, init=1 << params.alpha_bits),
            "target": Out(rate_bits, init=params.fixed(params.line_rate)),
        })
        members["rate"] = Out(rate_bits, init=params.fixed(params.line_rate))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        r = p.registers()
        rc, rt, alpha = self.rate, self.target, self.alpha
        wide = signed(p.rate_bits + p.alpha_bits + 3)   # exact: no wrap in any expression
        m.d.comb += self.may_send.eq(1)

        alpha_timer = Signal(range(p.alpha_timer + 1))
        increase_timer = Signal(range(p.increase_timer + 1))
        byte_count = Signal(range(p.byte_counter + WORD_BYTES + 1))
        stage_cap = p.fast_recovery_steps + 1
        t_count = Signal(range(stage_cap + 1))
        bc_count = Signal(range(stage_cap + 1))
        decay = alpha >> p.g_shift

        # -- CNP: multiplicative decrease -------------------------------------------------
        cut = Signal(wide)
        decreased = Signal(wide)
        m.d.comb += [cut.eq((rc * alpha) >> (p.alpha_bits + 1)), decreased.eq(rc - cut)]
        floored = decreased if self.mutant == "no_floor" else \
            Mux(decreased < r["min"], r["min"], decreased)

        # -- no CNP: timers, byte counter, increase --------------------------------------
        timer_event = increase_timer == p.increase_timer - 1
        total = Signal(range(p.byte_counter + WORD_BYTES + 1))
        m.d.comb += total.eq(byte_count + self.sent_bytes)
        byte_event = total >= p.byte_counter
        t_next = Mux(timer_event & (t_count < stage_cap), t_count + 1, t_count)
        bc_next = Mux(byte_event & (bc_count < stage_cap), bc_count + 1, bc_count)
        past_fast = Mux(t_next > bc_next, t_next, bc_next) > p.fast_recovery_steps
        hyper = Mux(t_next < bc_next, t_next, bc_next) > p.fast_recovery_steps
        raised = Signal(wide)
        m.d.comb += raised.eq(rt + Mux(hyper, r["hai"], r["ai"]))
        capped = raised if self.mutant == "no_ceiling" else Mux(raised > r["line"], r["line"], raised)
        rt_after = Signal(wide)
        m.d.comb += rt_after.eq(Mux(past_fast, capped, rt))

        with m.If(self.cnp.valid):
            m.d.sync += [
                rt.eq(rc), rc.eq(floored),
                alpha.eq(alpha - decay + (r["one"] >> p.g_shift)),
                alpha_timer.eq(0), increase_timer.eq(0), byte_count.eq(0),
                t_count.eq(0), bc_count.eq(0),
            ]
        with m.Else():
            with m.If(alpha_timer == p.alpha_timer - 1):
                m.d.sync += [alpha_timer.eq(0), alpha.eq(alpha - decay)]
            with m.Else():
                m.d.sync += alpha_timer.eq(alpha_timer + 1)
            m.d.sync += [
                increase_timer.eq(Mux(timer_event, 0, increase_timer + 1)),
                byte_count.eq(Mux(byte_event, total - p.byte_counter, total)),
            ]
            with m.If(timer_event | byte_event):
                m.d.sync += [t_count.eq(t_next), bc_count.eq(bc_next), rt.eq(rt_after),
                             rc.eq((rt_after + rc + 1) >> 1)]

        was_cut = Signal()
        with m.If(rc < r["line"]):
            m.d.sync += was_cut.eq(1)
        m.d.sync += [
            Assert((rc >= r["min"]) & (rc <= r["line"]) & (rt >= r["min"]) & (rt <= r["line"]),
                   "dcqcn_rate_within_bounds"),
            Assert(alpha <= r["one"], "dcqcn_alpha_at_most_one"),
            Cover(rc == r["min"], "cover_dcqcn_at_floor"),
            Cover(was_cut & (rc == r["line"]), "cover_dcqcn_recovered"),
        ]
        return m


class RateLimiter(wiring.Component):
    """Token-bucket gate on a packet stream, at ``rate`` bytes per clock (fixed point).

    Tokens (bytes, ``rate_frac_bits`` fraction) grow by ``rate`` every clock and every word
    that passes takes its ``nbytes``; the balance is capped at ``burst_bytes`` (what an idle
    source may later send back to back). A packet may *start* only
    when the bucket is not in debt, and then runs to its end at full speed (a packet is never
    stretched out on the wire, which a cut-through switch could not tolerate), so the debt it
    leaves delays the next one: over time the rate is exactly ``rate``.
    """

    def __init__(self, rate_bits, rate_frac_bits, *, burst_bytes=WORD_BYTES,
                 max_packet_bytes=512 * WORD_BYTES):
        self.rate_frac_bits = rate_frac_bits
        self.burst = burst_bytes << rate_frac_bits
        self.token_shape = signed(bits_for((max_packet_bytes + burst_bytes) << rate_frac_bits) + 2)
        super().__init__({
            "i": In(packet_stream()),
            "o": Out(packet_stream()),
            "rate": In(rate_bits),
            "may_send": In(1, init=1),
            "tokens": Out(self.token_shape),
        })

    def elaborate(self, platform):
        m = Module()
        in_packet = Signal()
        tokens = self.tokens
        allowed = in_packet | ((tokens >= 0) & self.may_send)
        m.d.comb += [
            self.o.payload.eq(self.i.payload),
            self.o.valid.eq(self.i.valid & allowed),
            self.i.ready.eq(self.o.ready & allowed),
        ]
        passed = self.o.valid & self.o.ready
        with m.If(passed):
            m.d.sync += in_packet.eq(~self.i.payload.last)
        spent = Mux(passed, self.i.payload.nbytes << self.rate_frac_bits, 0)
        # Cap after spending: capping the earned tokens before the spend would throw away
        # tokens earned while sending whenever rate > line rate / 2.
        balance = Signal(self.token_shape)
        m.d.comb += balance.eq(tokens + self.rate - spent)
        m.d.sync += tokens.eq(Mux(balance > self.burst, self.burst, balance))
        return m


class RateControlledSource(wiring.Component):
    """A traffic source's reaction point: rate limiter + reaction algorithm + CNP parser.

    ``data_in`` comes from any traffic generator; ``data_out`` goes to the network, paced by
    the reaction algorithm's rate. ``cnp_in`` takes the packets the network delivers to this
    source (always ready); CTPH and RTPH CNPs become ``cnp`` events, anything else is ignored.

    Parameters
    ----------
    params : DcqcnParams
        Rate scaling (``rate_frac_bits``, line rate) and, for DCQCN, the algorithm.
    reaction : callable
        ``reaction(params)`` -> a component with :func:`reaction_signature` (default Dcqcn).

    Ports
    -----
    data_in : In(packet_stream()), data_out : Out(packet_stream()), cnp_in : In(packet_stream())
    rate : Out(rate_bits)                         current rate (bytes/clock, fixed point)
    cnps_received, packets_sent, bytes_sent : Out(32)
    """

    def __init__(self, params: DcqcnParams = DcqcnParams(), *, reaction=Dcqcn,
                 burst_bytes=WORD_BYTES):
        self.params = params
        self.reaction = reaction
        self.burst_bytes = burst_bytes
        super().__init__({
            "data_in": In(packet_stream()),
            "data_out": Out(packet_stream()),
            "cnp_in": In(packet_stream()),
            "rate": Out(params.rate_bits),
            "cnps_received": Out(COUNTER_BITS),
            "packets_sent": Out(COUNTER_BITS),
            "bytes_sent": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        m.submodules.reaction = reaction = self.reaction(p)
        m.submodules.limiter = limiter = RateLimiter(p.rate_bits, p.rate_frac_bits,
                                                     burst_bytes=self.burst_bytes)
        wiring.connect(m, wiring.flipped(self.data_in), limiter.i)
        wiring.connect(m, limiter.o, wiring.flipped(self.data_out))
        m.d.comb += [limiter.rate.eq(reaction.rate), limiter.may_send.eq(reaction.may_send),
                     self.rate.eq(reaction.rate)]
        sent = self.data_out.valid & self.data_out.ready
        m.d.comb += reaction.sent_bytes.eq(Mux(sent, self.data_out.payload.nbytes, 0))
        with m.If(sent):
            m.d.sync += self.bytes_sent.eq(self.bytes_sent + self.data_out.payload.nbytes)
            with m.If(self.data_out.payload.first):
                m.d.sync += self.packets_sent.eq(self.packets_sent + 1)

        event = self._parse_cnps(m)
        m.d.comb += reaction.cnp.eq(event)
        with m.If(event.valid):
            m.d.sync += self.cnps_received.eq(self.cnps_received + 1)
        return m

    def _parse_cnps(self, m):
        """A CnpEvent for each CNP on ``cnp_in``; an RTPH CNP's body is in its second word."""
        word = self.cnp_in.payload
        m.d.comb += self.cnp_in.ready.eq(1)
        lph = header_view(word.data, LPH, 0)
        nth = header_view(word.data, NTH16, LPH_BYTES)
        head = self.cnp_in.valid & word.first & (lph.cfg == Cfg.COMPACT16)
        ctp_cnp = head & (nth.nlp == Nlp.CTP) & \
            (field_slice(word.data, CTPH, TRANSPORT_OFFSET, "opcode") == CtpOpcode.CNP)
        rtp_cnp = head & (nth.nlp == Nlp.RTP) & \
            (field_slice(word.data, RTPH, TRANSPORT_OFFSET, "opcode") == RtpOpcode.CNP)
        rtp_body_next = Signal()      # an RTPH CNP's first word was seen; body comes next
        with m.If(self.cnp_in.valid):
            m.d.sync += rtp_body_next.eq(rtp_cnp & ~word.last)
        body_offset_rtp = CNP_OFFSET[Nlp.RTP] - WORD_BYTES
        event = Signal(CnpEvent)
        ctp_body = header_view(word.data, CNP, CNP_OFFSET[Nlp.CTP])
        rtp_body = header_view(word.data, CNP, body_offset_rtp)
        with m.If(ctp_cnp):
            m.d.comb += [event.valid.eq(1), event.level.eq(ctp_body.level),
                         event.loc.eq(ctp_body.loc)]
        with m.Elif(self.cnp_in.valid & rtp_body_next):
            m.d.comb += [event.valid.eq(1), event.level.eq(rtp_body.level),
                         event.loc.eq(rtp_body.loc)]
        return event


def formal_dcqcn(*, mutant=None):
    """``ubproto prove cc-dcqcn``: DCQCN with every input free (CNPs and sent bytes at any
    time), with narrow fixed point and short timers so the solver reaches every branch."""
    small = DcqcnParams(line_rate=WORD_BYTES, min_rate=2, rate_ai=1, rate_hai=3, g_shift=2,
                        alpha_bits=4, alpha_timer=3, increase_timer=2, byte_counter=2 * WORD_BYTES,
                        fast_recovery_steps=1, rate_frac_bits=2)
    return FreeInputs(Dcqcn(small, mutant=mutant))
