"""A seedable leap-forward LFSR: the one source of randomness in the congestion datapath.

Why a leap-forward LFSR: a plain LFSR shifts one bit per clock, so two draws taken one clock
apart share all but one bit and are strongly correlated; a marker deciding once per clock
would then mark in clumps and its mark count would not be binomial. This LFSR advances
``draw_bits`` steps per draw, and the draw is the ``draw_bits`` output bits of those steps, so
consecutive draws are disjoint windows of one maximal-length sequence (an m-sequence): every
window of up to 32 bits, and so every pair of 16-bit draws, is uniformly distributed over its
non-zero values.

The register is a Fibonacci LFSR over the primitive characteristic polynomial
x^32 + x^22 + x^2 + x + 1 (period 2^32 - 1). Bit ``i`` of the state is output bit ``t + i``;
one step computes ``a[t+32] = a[t+22] ^ a[t+2] ^ a[t+1] ^ a[t]`` and shifts right. The k-step
leap is the same linear map applied k times, worked out here in Python as GF(2) bit masks so
the hardware is one XOR per state bit, not k chained steps.

:class:`LfsrModel` is the bit-exact Python model the tests compare against.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError

__all__ = ["LFSR_BITS", "LFSR_TAPS", "Lfsr", "LfsrModel", "seed_state"]

#: State width and the recurrence's taps (a[t+32] = XOR of a[t+tap] for each tap).
LFSR_BITS = 32
LFSR_TAPS = (0, 1, 2, 22)
#: Replaces an all-zero seed (the one state an LFSR can never leave).
_ZERO_SEED_REPLACEMENT = 1
_STATE_MASK = (1 << LFSR_BITS) - 1


def seed_state(seed):
    """The register value a ``seed`` loads (any integer; only the low 32 bits count)."""
    state = seed & _STATE_MASK
    return state or _ZERO_SEED_REPLACEMENT


def _feedback(state):
    bit = 0
    for tap in LFSR_TAPS:
        bit ^= (state >> tap) & 1
    return bit


def _leap_masks(steps):
    """For each next-state bit, the mask of current-state bits it is the XOR of."""
    # Symbolic state: bit i holds the GF(2) combination (a mask over the original bits).
    symbolic = [1 << i for i in range(LFSR_BITS)]
    for _ in range(steps):
        new_bit = 0
        for tap in LFSR_TAPS:
            new_bit ^= symbolic[tap]
        symbolic = symbolic[1:] + [new_bit]
    return symbolic


class LfsrModel:
    """Bit-exact Python model of :class:`Lfsr`."""

    def __init__(self, seed, draw_bits):
        self.state = seed_state(seed)
        self.draw_bits = draw_bits

    @property
    def value(self):
        """The draw currently offered (the next ``draw_bits`` output bits)."""
        return self.state & ((1 << self.draw_bits) - 1)

    def advance(self):
        for _ in range(self.draw_bits):
            self.state = (self.state >> 1) | (_feedback(self.state) << (LFSR_BITS - 1))

    def draw(self):
        value = self.value
        self.advance()
        return value


class Lfsr(wiring.Component):
    """Leap-forward LFSR: ``value`` is a uniform draw of ``draw_bits`` bits.

    Parameters
    ----------
    draw_bits : int
        Bits per draw, 1..16 (two draws must fit in the 32-bit state to be independent).
    seed : int
        State after reset (0 is replaced by 1).

    Ports
    -----
    value : Out(draw_bits)   the current draw (stable until ``advance``)
    advance : In(1)          consume the draw: the LFSR leaps ``draw_bits`` steps
    load : In(1)             load ``seed_in`` (takes priority over ``advance``)
    seed_in : In(32)         run-time seed, for reproducible runs without a rebuild
    """

    def __init__(self, draw_bits=16, *, seed=1):
        if not 1 <= draw_bits <= LFSR_BITS // 2:
            raise ConfigError(f"Lfsr: draw_bits must be in 1..{LFSR_BITS // 2}, got {draw_bits}")
        self.draw_bits = draw_bits
        self.seed = seed
        super().__init__({
            "value": Out(draw_bits),
            "advance": In(1),
            "load": In(1),
            "seed_in": In(LFSR_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        state = Signal(LFSR_BITS, init=seed_state(self.seed))
        masks = _leap_masks(self.draw_bits)
        leaped = Signal(LFSR_BITS)
        for i, mask in enumerate(masks):
            terms = [state[j] for j in range(LFSR_BITS) if mask >> j & 1]
            bit = terms[0]
            for term in terms[1:]:
                bit = bit ^ term
            m.d.comb += leaped[i].eq(bit)
        with m.If(self.load):
            # A zero seed would lock the LFSR at zero forever.
            m.d.sync += state.eq(self.seed_in | (self.seed_in == 0))
        with m.Elif(self.advance):
            m.d.sync += state.eq(leaped)
        m.d.comb += self.value.eq(state[:self.draw_bits])
        return m
