"""Marking rules: the interface, and RED/FECN as its worked example.

A *marking rule* decides, for one departing packet, whether to mark it, from a queue
occupancy in bytes. Every rule is a :class:`~amaranth.lib.wiring.Component` with the members
of :func:`marking_rule_signature` (see docs/congestion.md, "Writing a marking rule"):

==============  ==========================  ============================================
member          direction, shape            meaning
==============  ==========================  ============================================
occupancy       In(occupancy_bits)          queue occupancy in bytes, sampled every clock
params          In(rule.params_layout(...)) the rule's run-time parameters (CSRs)
decide          In(1)                       a packet departs now: decide, consume a draw
mark            Out(1)                      the decision (valid in the ``decide`` cycle)
severe          Out(1)                      the mark is the severe ECN level
==============  ==========================  ============================================

The rule may pipeline the occupancy (it is a slowly moving quantity); ``mark`` must be a
function of the current cycle's state so the marker can use it in the ``decide`` cycle.

RED / FECN (:class:`RedRule`)
-----------------------------
With q the occupancy in bytes::

    p(q) = 0                                   q <  Kmin
    p(q) = Pmax * (q - Kmin) / (Kmax - Kmin)   Kmin <= q < Kmax
    p(q) = 1                                   q >= Kmax   (severe)

so Kmin = Kmax, Pmax = 1 is the DCTCP step (mark every packet once q >= K). The hardware
has no divider: software precomputes the slope Pmax / (Kmax - Kmin) as an 18-bit mantissa
and a right shift (:meth:`RedProfile.registers`), and the datapath computes
``p = min(((q - Kmin) * slope) >> shift, Pmax)`` in a five-stage pipeline (compare and
subtract, partial products, their sum, shift, clamp), then marks when
a uniform :data:`P_BITS`-bit draw from a leap-forward LFSR is below ``p``. Probabilities are
fixed point with 1.0 = ``1 << P_BITS``; :meth:`RedProfile.hw_probability` is the exact value
the hardware implements, :meth:`RedProfile.probability` the ideal formula.

An ``override`` CSR makes marking deterministic for tests and debugging: never, always, or
"fixed draw" (the LFSR draw is replaced by the ``fixed_draw`` CSR, so a packet is marked
exactly when ``p(q) > fixed_draw / 2**P_BITS``).

Formal properties (named; ``ubproto prove cc-red``), for the random and fixed-draw modes:

* ``red_never_marks_below_kmin``   no mark when the occupancy decided on is below Kmin
* ``red_always_marks_above_kmax``  a mark, severe, when it is at or above Kmax
* ``cover_red_random_mark``        a mark from the linear region (0 < p < 1) happens
"""

import enum
from dataclasses import dataclass

from amaranth.hdl import Assert, Cover, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ...verify.formal import FreeInputs
from .lfsr import Lfsr

__all__ = ["P_BITS", "P_ONE", "SLOPE_BITS", "SHIFT_BITS", "RED_LATENCY", "MarkOverride", "RedProfile",
           "marking_rule_signature", "RedRule", "RED_MUTANTS", "RED_PROPERTIES", "formal_red"]

#: Probability resolution: 1.0 is ``1 << P_BITS``; the LFSR draws P_BITS bits per decision.
P_BITS = 16
P_ONE = 1 << P_BITS
#: Slope mantissa width: one operand of an ECP5 18x18 multiplier.
SLOPE_BITS = 18
#: Width of the slope's right shift (shifts up to 63).
SHIFT_BITS = 6
#: Pipeline stages between ``occupancy`` and the probability used by a decision.
RED_LATENCY = 5


class MarkOverride(enum.IntEnum):
    """The ``override`` CSR of a marking rule."""
    RANDOM = 0       #: normal operation: mark with probability p(q)
    NEVER = 1        #: never mark
    ALWAYS = 2       #: mark every packet (minor level)
    FIXED_DRAW = 3   #: deterministic: mark iff p(q) > fixed_draw / 2**P_BITS


RED_PROPERTIES = {
    "red_never_marks_below_kmin": "no mark when the decided occupancy is below Kmin",
    "red_always_marks_above_kmax": "a severe mark when the decided occupancy is >= Kmax",
    "cover_red_random_mark": "a mark with 0 < p < 1 happens",
}

RED_MUTANTS = {
    "no_below_check": "the linear region is used below Kmin too (q - Kmin wraps)",
    "above_uses_pmax": "at or above Kmax the probability is Pmax instead of 1",
    "draw_le": "marks when draw <= p instead of draw < p (marks at p = 0)",
}


def marking_rule_signature(occupancy_bits, params_layout):
    """The members every marking rule has (see the module docstring)."""
    return wiring.Signature({
        "occupancy": In(occupancy_bits),
        "params": In(params_layout),
        "decide": In(1),
        "mark": Out(1),
        "severe": Out(1),
    })


@dataclass(frozen=True)
class RedProfile:
    """RED parameters as a researcher states them, and the CSR values that implement them.

    ``kmin``/``kmax`` in bytes, ``pmax`` a probability in (0, 1]. ``kmin == kmax`` with
    ``pmax = 1`` is the DCTCP step.
    """
    kmin: int
    kmax: int
    pmax: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.kmin, int) and isinstance(self.kmax, int)) \
                or not 0 <= self.kmin <= self.kmax:
            raise ConfigError(f"RED: need integer 0 <= kmin <= kmax bytes, got "
                              f"kmin={self.kmin!r}, kmax={self.kmax!r}")
        if not 0 < self.pmax <= 1:
            raise ConfigError(f"RED: pmax must be in (0, 1], got {self.pmax!r}")

    @classmethod
    def from_config(cls, congestion, *, phantom=False):
        """The real-queue (or phantom-queue) profile of a ``CongestionConfig``."""
        prefix = "phantom_" if phantom else ""
        return cls(getattr(congestion, f"{prefix}kmin_bytes"),
                   getattr(congestion, f"{prefix}kmax_bytes"),
                   getattr(congestion, f"{prefix}pmax"))

    @property
    def pmax_fixed(self):
        return max(1, round(self.pmax * P_ONE))

    def slope_registers(self):
        """(slope, shift) with ``(x * slope) >> shift ~= pmax_fixed * x / (kmax - kmin)``.

        The shift is the largest that keeps the mantissa within SLOPE_BITS, so the slope
        keeps 17-18 significant bits whatever the range (1 byte .. 2^26 bytes).
        """
        span = self.kmax - self.kmin
        if span == 0:
            return 0, 0       # no linear region: the step at K needs no slope
        best = (0, 0)
        for shift in range(1 << SHIFT_BITS):
            slope = round(self.pmax_fixed * (1 << shift) / span)
            if slope >= 1 << SLOPE_BITS:
                break
            best = (slope, shift)
        return best

    def registers(self, *, override=MarkOverride.RANDOM, fixed_draw=0):
        """The ``params`` CSR values (a dict for :func:`red_params_layout`)."""
        slope, shift = self.slope_registers()
        return {"kmin": self.kmin, "kmax": self.kmax, "pmax": self.pmax_fixed,
                "slope": slope, "shift": shift, "override": int(override),
                "fixed_draw": fixed_draw}

    def probability(self, q):
        """The ideal RED formula."""
        if q < self.kmin:
            return 0.0
        if q >= self.kmax:
            return 1.0
        return self.pmax * (q - self.kmin) / (self.kmax - self.kmin)

    def hw_probability_fixed(self, q):
        """Exactly what the hardware compares the draw with (1.0 = P_ONE)."""
        if q < self.kmin:
            return 0
        if q >= self.kmax:
            return P_ONE
        slope, shift = self.slope_registers()
        return min(((q - self.kmin) * slope) >> shift, self.pmax_fixed)

    def hw_probability(self, q):
        return self.hw_probability_fixed(q) / P_ONE


def red_params_layout(occupancy_bits):
    """CSR layout of :class:`RedRule` (see :meth:`RedProfile.registers`)."""
    return data.StructLayout({
        "kmin": unsigned(occupancy_bits),
        "kmax": unsigned(occupancy_bits),
        "pmax": unsigned(P_BITS + 1),
        "slope": unsigned(SLOPE_BITS),
        "shift": unsigned(SHIFT_BITS),
        "override": unsigned(2),
        "fixed_draw": unsigned(P_BITS),
    })


class RedRule(wiring.Component):
    """RED/FECN marking rule (see the module docstring).

    Parameters
    ----------
    occupancy_bits : int
        Width of the occupancy in bytes (and of Kmin/Kmax).
    seed : int
        LFSR seed after reset (the LFSR also has a run-time ``seed`` load).
    mutant : str or None
        A deliberately broken variant from :data:`RED_MUTANTS` (tests only).

    Ports: those of :func:`marking_rule_signature`, plus

    probability : Out(P_BITS + 1)  the p(q) the next decision uses (1.0 = 1 << P_BITS)
    seed_load : In(1), seed : In(32)  load the LFSR (reproducible runs without a rebuild)
    """

    params_layout = staticmethod(red_params_layout)

    def __init__(self, occupancy_bits, *, seed=1, mutant=None):
        if not 1 <= occupancy_bits <= 40:
            raise ConfigError(f"RedRule: occupancy_bits must be in 1..40, got {occupancy_bits}")
        if mutant is not None and mutant not in RED_MUTANTS:
            raise ConfigError(f"RedRule: unknown mutant {mutant!r}; known: {', '.join(RED_MUTANTS)}")
        self.occupancy_bits = occupancy_bits
        self.seed = seed
        self.mutant = mutant
        members = dict(marking_rule_signature(occupancy_bits,
                                              red_params_layout(occupancy_bits)).members)
        members.update({
            "probability": Out(P_BITS + 1),
            "seed_load": In(1),
            "seed_value": In(32),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        params = self.params
        q = self.occupancy
        m.submodules.lfsr = lfsr = Lfsr(P_BITS, seed=self.seed)
        m.d.comb += [lfsr.load.eq(self.seed_load), lfsr.seed_in.eq(self.seed_value),
                     lfsr.advance.eq(self.decide)]

        # Stage 1: where q is relative to the thresholds, and the excess over Kmin.
        below1, above1 = Signal(), Signal()
        excess1 = Signal(self.occupancy_bits)
        m.d.sync += [below1.eq(q < params.kmin), above1.eq(q >= params.kmax),
                     excess1.eq(q - params.kmin)]
        if self.mutant == "no_below_check":
            m.d.sync += below1.eq(0)
        # Stage 2a: partial products of at most SLOPE_BITS x SLOPE_BITS, one FPGA DSP block
        # each with its output registered; 2b: their sum. (One wide multiply would chain two
        # DSPs and a fabric adder in one clock.)
        lo_bits = min(SLOPE_BITS, self.occupancy_bits)
        partial_lo, partial_hi = Signal(lo_bits + SLOPE_BITS), Signal(self.occupancy_bits + SLOPE_BITS)
        below2a, above2a = Signal(), Signal()
        m.d.sync += [below2a.eq(below1), above2a.eq(above1),
                     partial_lo.eq(excess1[:lo_bits] * params.slope),
                     partial_hi.eq(excess1[lo_bits:] * params.slope)]
        below2, above2 = Signal(), Signal()
        product2 = Signal(self.occupancy_bits + SLOPE_BITS)
        m.d.sync += [below2.eq(below2a), above2.eq(above2a),
                     product2.eq(partial_lo + (partial_hi << lo_bits))]
        # Stage 3: scale. Only P_BITS + 1 bits can matter (p <= 1); anything above them
        # saturates, which keeps the stage-4 compare 17 bits wide instead of 44.
        shifted = Signal(self.occupancy_bits + SLOPE_BITS)
        m.d.comb += shifted.eq(product2 >> params.shift)
        below3, above3, saturated3 = Signal(), Signal(), Signal()
        linear3 = Signal(P_BITS + 1)
        m.d.sync += [below3.eq(below2), above3.eq(above2),
                     saturated3.eq(shifted[P_BITS + 1:] != 0), linear3.eq(shifted[:P_BITS + 1])]
        # Stage 4: clamp to Pmax, and the thresholds' verdicts.
        ceiling = P_ONE if self.mutant != "above_uses_pmax" else params.pmax
        clamped = Mux(saturated3 | (linear3 > params.pmax), params.pmax, linear3)
        m.d.sync += self.probability.eq(Mux(below3, 0, Mux(above3, ceiling, clamped)))
        above4 = Signal()
        m.d.sync += above4.eq(above3)

        draw = Mux(params.override == MarkOverride.FIXED_DRAW, params.fixed_draw, lfsr.value)
        hit = (draw <= self.probability) if self.mutant == "draw_le" else (draw < self.probability)
        with m.Switch(params.override):
            with m.Case(MarkOverride.NEVER):
                m.d.comb += self.mark.eq(0)
            with m.Case(MarkOverride.ALWAYS):
                m.d.comb += self.mark.eq(self.decide)
            with m.Default():
                m.d.comb += self.mark.eq(self.decide & hit)
        m.d.comb += self.severe.eq(self.mark & above4)

        self._properties(m, q, params, hit)
        return m

    def _properties(self, m, q, params, hit):
        # The occupancy and thresholds each decision was computed from, delayed alongside
        # the pipeline, so the properties speak about the inputs and not about the flags.
        # ``primed`` is set once the pipeline holds values computed after reset.
        q_seen, kmin_seen, kmax_seen, primed = q, params.kmin, params.kmax, 1
        for stage in range(RED_LATENCY):
            q_next = Signal.like(q, name=f"decided_q{stage + 1}")
            kmin_next = Signal.like(q, name=f"decided_kmin{stage + 1}")
            kmax_next = Signal.like(q, name=f"decided_kmax{stage + 1}")
            primed_next = Signal(name=f"primed{stage + 1}")
            m.d.sync += [q_next.eq(q_seen), kmin_next.eq(kmin_seen), kmax_next.eq(kmax_seen),
                         primed_next.eq(primed)]
            q_seen, kmin_seen, kmax_seen, primed = q_next, kmin_next, kmax_next, primed_next
        probabilistic = ((params.override == MarkOverride.RANDOM) |
                         (params.override == MarkOverride.FIXED_DRAW))
        # Kmin <= Kmax is the CSR contract (RedProfile enforces it); with Kmin > Kmax the two
        # properties would contradict each other for Kmax <= q < Kmin.
        judged = self.decide & probabilistic & primed & (kmin_seen <= kmax_seen)
        # Checked at the clock edge (sync), on settled values: a comb-domain property would
        # also see the transient values Amaranth's simulator passes through within a cycle.
        m.d.sync += [
            Assert(~(judged & (q_seen < kmin_seen) & self.mark), "red_never_marks_below_kmin"),
            Assert(~(judged & (q_seen >= kmax_seen)) | (self.mark & self.severe),
                   "red_always_marks_above_kmax"),
            Cover(judged & self.mark & (self.probability > 0) & (self.probability < P_ONE),
                  "cover_red_random_mark"),
        ]


def formal_red(*, occupancy_bits=6, mutant=None):
    """``ubproto prove cc-red``: the rule with every input free (a small occupancy width
    keeps the multiplier cheap for the solver; the logic does not depend on the width)."""
    return FreeInputs(RedRule(occupancy_bits, mutant=mutant))
