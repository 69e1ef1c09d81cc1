"""Phantom queue: a virtual queue drained slightly slower than the link (HULL, Uno).

A phantom queue stores no packets. It is a byte counter that every packet through the egress
port increments by its size (at departure, or at arrival, a parameter) and that drains every
clock at ``gamma`` x the line rate, ``gamma < 1``. When traffic leaves the port at more than
``gamma * C`` the counter grows even though the real queue may be empty, so RED marking on it
(:class:`~.marker.FecnMarker` with the phantom source) signals congestion before a real
queue forms: the real queue stays near empty at the cost of about ``1 - gamma`` of the link.
Because the counter needs no buffer behind it, it can be as deep as a long-RTT flow's
bandwidth-delay product (32 MB by default), which is why Uno marks long-RTT traffic from it.

Arithmetic: the count is fixed point with :data:`DRAIN_FRAC_BITS` fraction bits, so a drain
of e.g. 20/1.05 = 19.0476 bytes per clock is exact to 2^-16 byte and the fraction carries
from clock to clock (no divider, no rate error building up). The count saturates at 0 (an
idle port cannot bank drain credit) and at ``size_bytes``. Each clock's net change (bytes
in minus the drain) is registered before it is applied, so the counter lags the traffic by
one clock.

Formal properties (named; ``ubproto prove cc-phantom``):

* ``phantom_within_bounds``    the value written to the counter is within [0, size]
* ``cover_phantom_full``       the counter reaches ``size_bytes``
* ``cover_phantom_drained``    the counter returns to 0 after having been full
"""

from fractions import Fraction

from amaranth.hdl import Assert, Cover, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ...errors import ConfigError
from ..stream import WORD_BYTES
from ...verify.formal import FreeInputs

__all__ = ["DRAIN_FRAC_BITS", "DEFAULT_PHANTOM_BYTES", "WordTap", "drain_fixed", "PhantomQueue",
           "PhantomModel",
           "PHANTOM_MUTANTS", "PHANTOM_PROPERTIES", "formal_phantom"]

#: Fraction bits of the counter and of the drain rate.
DRAIN_FRAC_BITS = 16
#: Default counter size: a 32 MB bandwidth-delay product (e.g. 400 Gb/s x 640 us).
DEFAULT_PHANTOM_BYTES = 32 << 20

#: What the phantom queue sees of a packet stream: a word passed (``valid & ready``) and its
#: valid bytes. Connect ``valid`` to the handshake, not to ``valid`` alone.
WordTap = data.StructLayout({"valid": unsigned(1), "nbytes": unsigned(bits_for(WORD_BYTES))})

PHANTOM_PROPERTIES = {
    "phantom_within_bounds": "the counter stays within [0, size_bytes]",
    "cover_phantom_full": "the counter can fill up",
    "cover_phantom_drained": "the counter drains back to 0 after being full",
}

PHANTOM_MUTANTS = {
    "no_floor": "draining an (almost) empty counter wraps below zero",
    "no_ceiling": "adding to a full counter goes past size_bytes",
}


def drain_fixed(gamma, line_bytes_per_cycle=WORD_BYTES):
    """The ``drain_per_cycle`` CSR value for a drain of ``gamma`` x the line rate."""
    gamma = Fraction(gamma).limit_denominator(1 << 20) if isinstance(gamma, float) else Fraction(gamma)
    if not 0 < gamma <= 1:
        raise ConfigError(f"phantom queue: gamma must be in (0, 1], got {float(gamma)}")
    return round(gamma * line_bytes_per_cycle * (1 << DRAIN_FRAC_BITS))


class PhantomModel:
    """Bit-exact Python model of :class:`PhantomQueue`'s counter."""

    def __init__(self, size_bytes=DEFAULT_PHANTOM_BYTES, drain_per_cycle=drain_fixed(Fraction(20, 21))):
        self.ceiling = size_bytes << DRAIN_FRAC_BITS
        self.drain = drain_per_cycle
        self.count = 0
        self.delta = 0          # the hardware's registered net change (one clock behind)

    @property
    def occupancy(self):
        return self.count >> DRAIN_FRAC_BITS

    def step(self, added_bytes=0, clear=False):
        raw = self.count + self.delta
        self.count = 0 if clear else min(max(raw, 0), self.ceiling)
        self.delta = (added_bytes << DRAIN_FRAC_BITS) - self.drain


class PhantomQueue(wiring.Component):
    """Phantom queue of one egress port (see the module docstring).

    Parameters
    ----------
    size_bytes : int
        Counter ceiling in bytes (default 32 MiB).
    gamma : float or Fraction
        Drain as a fraction of the line rate; sets the reset value of ``drain_per_cycle``.
    line_bytes_per_cycle : int
        Line rate in bytes per clock (default: one flit per clock).
    count_at : "departure" or "arrival"
        Which tap increments the counter.
    mutant : str or None
        A deliberately broken variant from :data:`PHANTOM_MUTANTS` (tests only).

    Ports
    -----
    departed, arrived : In(WordTap)    words leaving / entering the port's queues
    drain_per_cycle : In(...)          CSR: bytes drained per clock, DRAIN_FRAC_BITS fraction bits
    clear : In(1)                      CSR: empty the counter
    occupancy : Out(range(size_bytes + 1))  the counter, whole bytes
    """

    def __init__(self, size_bytes=DEFAULT_PHANTOM_BYTES, *, gamma=Fraction(20, 21),
                 line_bytes_per_cycle=WORD_BYTES, count_at="departure", mutant=None):
        if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < WORD_BYTES:
            raise ConfigError(f"PhantomQueue: size_bytes must be an integer >= {WORD_BYTES}, "
                              f"got {size_bytes!r}")
        if count_at not in ("departure", "arrival"):
            raise ConfigError(f"PhantomQueue: count_at must be 'departure' or 'arrival', "
                              f"got {count_at!r}")
        if mutant is not None and mutant not in PHANTOM_MUTANTS:
            raise ConfigError(f"PhantomQueue: unknown mutant {mutant!r}; "
                              f"known: {', '.join(PHANTOM_MUTANTS)}")
        self.size_bytes = size_bytes
        self.count_at = count_at
        self.mutant = mutant
        self.line_bytes_per_cycle = line_bytes_per_cycle
        drain = drain_fixed(gamma, line_bytes_per_cycle)
        drain_bits = bits_for(line_bytes_per_cycle << DRAIN_FRAC_BITS)
        super().__init__({
            "departed": In(WordTap),
            "arrived": In(WordTap),
            "drain_per_cycle": In(drain_bits, init=drain),
            "clear": In(1),
            "occupancy": Out(range(size_bytes + 1)),
        })

    @property
    def occupancy_bits(self):
        return len(self.occupancy)

    def elaborate(self, platform):
        m = Module()
        ceiling = self.size_bytes << DRAIN_FRAC_BITS
        count = Signal(range(ceiling + 1))     # fixed point: bytes << DRAIN_FRAC_BITS
        tap = self.departed if self.count_at == "departure" else self.arrived
        added = Mux(tap.valid, tap.nbytes, 0)
        # This clock's net change, registered: the counter then needs one carry chain (plus
        # the ceiling compare) per clock instead of three; it lags the tap by one clock.
        delta = Signal(signed(bits_for(self.line_bytes_per_cycle << DRAIN_FRAC_BITS) + 2))
        m.d.sync += delta.eq((added << DRAIN_FRAC_BITS) - self.drain_per_cycle)

        # Exact signed arithmetic, wide enough never to wrap, so the bounds are explicit.
        raw = Signal(signed(len(count) + 2))
        m.d.comb += raw.eq(count + delta)
        floored = raw if self.mutant == "no_floor" else Mux(raw < 0, 0, raw)
        limited = floored if self.mutant == "no_ceiling" else Mux(floored > ceiling, ceiling, floored)
        next_count = Signal(signed(len(count) + 2))
        m.d.comb += next_count.eq(Mux(self.clear, 0, limited))
        m.d.sync += count.eq(next_count)
        m.d.comb += self.occupancy.eq(count >> DRAIN_FRAC_BITS)

        # Properties, checked on settled values at the clock edge.
        was_full = Signal()
        with m.If(count == ceiling):
            m.d.sync += was_full.eq(1)
        m.d.sync += [
            Assert((next_count >= 0) & (next_count <= ceiling), "phantom_within_bounds"),
            Cover(count == ceiling, "cover_phantom_full"),
            Cover(was_full & (count == 0), "cover_phantom_drained"),
        ]
        return m


def formal_phantom(*, size_bytes=64, mutant=None):
    """``ubproto prove cc-phantom``: a small counter, every input free (any traffic, any
    drain rate, clears at any time); the logic does not depend on the size beyond widths."""
    return FreeInputs(PhantomQueue(size_bytes, mutant=mutant))
