"""CreditCounter: the sender's count of link credits for one virtual lane (DESIGN.md §3).

A UB-style link sends a packet on a VL only when the receiver has buffer room for it. The
room is tracked by the sender as *credits*, counted in cells (``cell_flits`` flits each, see
:class:`ubproto.config.ProtocolConfig`): the count starts at the receiver's buffer size
(``initial``), a packet of N cells takes N credits, and the receiver hands credits back
(piggybacked on LPH/LBH or in a Crd_Ack) as it frees its buffer. One ``CreditCounter`` per
VL.

Behaviour
---------
* ``available`` is the count, registered; it is ``initial`` after reset.
* ``consume`` with ``consume_cells = N``: accepted when ``N <= available`` (the TX is meant
  to check ``available`` before starting a packet), and then N credits are taken.
* ``restore`` with ``restore_cells = N``: accepted when ``available + N <= initial``, and then
  N credits are added.
* Both may happen in the same cycle; each is judged against the count at the start of the
  cycle, so the next count is ``available - taken + given`` and stays within ``0..initial``.
* Invalid requests are refused, never wrapped or clipped: a refused request changes nothing,
  raises ``consume_refused`` / ``restore_refused`` for that cycle and sets the sticky
  ``error`` flag (cleared only by reset). Clipping a bad restore would hide a corrupted
  Crd_Ack; wrapping would turn a TX bug into a receiver buffer overflow.
* A request of 0 cells is accepted and changes nothing.

Formal properties (named; see docs/formal.md)
---------------------------------------------
Inside ``elaborate`` (so they also run as assertions in every simulation):

* ``credit_never_negative``      the next count, in exact arithmetic, is ``>= 0``
* ``credit_never_above_initial`` the next count, in exact arithmetic, is ``<= initial``
* ``cover_exhausted``            the count reaches 0
* ``cover_refilled``             the count is back at ``initial`` after having been 0

In :class:`CreditLoopHarness` (a sender, an ideal channel and a receiver buffer):

* ``credit_conservation``        cells in flight + cells held by the receiver + credits on
                                 their way back + ``available`` == ``initial``

``mutant=`` builds a deliberately broken variant (see :data:`MUTANTS`); each one must make a
named property fail, which tests/test_credit_formal.py checks.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError

__all__ = ["CreditCounter", "CreditLoopHarness", "MUTANTS", "PROPERTIES",
           "formal_counter", "formal_loop"]

#: Property name -> what it states. The names are the ones a failing proof reports.
PROPERTIES = {
    "credit_never_negative": "a consume never takes more credits than are available",
    "credit_never_above_initial": "a restore never lifts the count above the receiver's buffer",
    "credit_conservation": "in-flight + held + returning + available == initial (loop harness)",
    "cover_exhausted": "the credits can run out (reach 0)",
    "cover_refilled": "the credits can come back to initial after running out",
}

#: Mutant name -> the one thing it breaks. Used only by the mutant tests and ``--mutant``.
MUTANTS = {
    "no_consume_check": "accepts a consume larger than the credits available (no saturation)",
    "no_restore_check": "accepts a restore that lifts the count above initial",
    "off_by_one_restore": "a restore of N cells adds N + 1 credits",
    "lost_decrement": "a consume in the same cycle as a restore is accepted but not subtracted",
    "floor_one": "refuses a consume that would take the last credit ('<' instead of '<=')",
    "restore_ignored": "restores are accepted but never added",
}

#: Largest receiver buffer, in cells, a counter accepts (a sanity bound, not a protocol one).
MAX_INITIAL = 1 << 20


def _check_count(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"CreditCounter: {name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"CreditCounter: {name} must be in {lo}..{hi}, got {value}")


class CreditCounter(wiring.Component):
    """Credits of one VL, in cells (see module docstring).

    Parameters
    ----------
    initial : int
        Receiver buffer for this VL, in cells; the count after reset. 1..2**20.
    max_consume : int
        Largest packet, in cells (sets the width of ``consume_cells``). 1..initial, default
        ``initial``: a packet larger than the whole buffer could never be sent.
    max_restore : int
        Largest single credit return, in cells (sets the width of ``restore_cells``).
        1..initial, default ``initial``.
    mutant : str or None
        Build a deliberately broken variant, one of :data:`MUTANTS` (tests only).

    Ports
    -----
    consume : In(1)                       the TX starts a packet this cycle
    consume_cells : In(range(max_consume + 1))  its size in cells
    restore : In(1)                       the receiver returned credits this cycle
    restore_cells : In(range(max_restore + 1))  how many cells
    available : Out(range(initial + 1))   credits the TX may use now
    consume_refused : Out(1)              this cycle's consume is refused (too few credits)
    restore_refused : Out(1)              this cycle's restore is refused (above initial)
    error : Out(1)                        sticky: a request was refused since reset
    """

    def __init__(self, initial, *, max_consume=None, max_restore=None, mutant=None,
                 src_loc_at=0):
        _check_count("initial", initial, 1, MAX_INITIAL)
        max_consume = initial if max_consume is None else max_consume
        max_restore = initial if max_restore is None else max_restore
        _check_count("max_consume", max_consume, 1, initial)
        _check_count("max_restore", max_restore, 1, initial)
        if mutant is not None and mutant not in MUTANTS:
            raise ConfigError(f"CreditCounter: unknown mutant {mutant!r}; "
                              f"known: {', '.join(MUTANTS)}")
        self.initial = initial
        self.max_consume = max_consume
        self.max_restore = max_restore
        self.mutant = mutant
        super().__init__({
            "consume": In(1),
            "consume_cells": In(range(max_consume + 1)),
            "restore": In(1),
            "restore_cells": In(range(max_restore + 1)),
            "available": Out(range(initial + 1), init=initial),
            "consume_refused": Out(1),
            "restore_refused": Out(1),
            "error": Out(1),
        }, src_loc_at=src_loc_at + 1)

    @classmethod
    def for_protocol(cls, protocol, initial, **kwargs):
        """A counter sized for a :class:`~ubproto.config.ProtocolConfig`: its largest packet
        (``max_packet_flits``, in cells) bounds ``max_consume``."""
        largest = protocol.cells_for(protocol.max_packet_flits)
        if largest > initial:
            raise ConfigError(
                f"CreditCounter: the largest packet ({protocol.max_packet_flits} flits = "
                f"{largest} cells of {protocol.cell_flits} flits) does not fit a receiver "
                f"buffer of {initial} cells; it could never be sent")
        # src_loc_at: names the caller, not this line, as the counter's origin.
        return cls(initial, max_consume=largest, src_loc_at=1, **kwargs)

    def elaborate(self, platform):
        m = Module()
        credits = self.available   # the register itself

        take_ok, give_ok = self._acceptance(credits)
        taken, given = self._amounts(take_ok, give_ok)
        # Exact (signed, one bit wider than needed) so that a bug shows as a value out of
        # range in the properties, instead of wrapping silently into a plausible count.
        next_value = Signal(signed(len(credits) + 2))
        m.d.comb += next_value.eq(credits + given - taken)
        m.d.sync += credits.eq(next_value)

        m.d.comb += [
            self.consume_refused.eq(self.consume & ~take_ok),
            self.restore_refused.eq(self.restore & ~give_ok),
        ]
        with m.If(self.consume_refused | self.restore_refused):
            m.d.sync += self.error.eq(1)

        self._properties(m, credits, next_value)
        return m

    def _acceptance(self, credits):
        """Whether this cycle's consume and restore are accepted (judged on ``credits``)."""
        take_ok = self.consume & (self.consume_cells <= credits)
        give_ok = self.restore & (credits + self.restore_cells <= self.initial)
        if self.mutant == "no_consume_check":
            take_ok = self.consume
        elif self.mutant == "floor_one":
            take_ok = self.consume & (self.consume_cells < credits)
        elif self.mutant == "no_restore_check":
            give_ok = self.restore
        return take_ok, give_ok

    def _amounts(self, take_ok, give_ok):
        """Credits taken and given this cycle, from the accepted requests."""
        taken = Mux(take_ok, self.consume_cells, 0)
        given = Mux(give_ok, self.restore_cells, 0)
        if self.mutant == "off_by_one_restore":
            given = Mux(give_ok, self.restore_cells + 1, 0)
        elif self.mutant == "restore_ignored":
            given = 0
        elif self.mutant == "lost_decrement":
            taken = Mux(take_ok & ~give_ok, self.consume_cells, 0)
        return taken, given

    def _properties(self, m, credits, next_value):
        m.d.comb += [
            Assert(next_value >= 0, "credit_never_negative"),
            Assert(next_value <= self.initial, "credit_never_above_initial"),
            Cover(credits == 0, "cover_exhausted"),
        ]
        # Remembers that the credits ran out, so that "refilled" means refilled by restores
        # (a reset also clears it, so a reset back to initial does not count).
        was_exhausted = Signal()
        with m.If(credits == 0):
            m.d.sync += was_exhausted.eq(1)
        m.d.comb += Cover(was_exhausted & (credits == self.initial), "cover_refilled")


class CreditLoopHarness(Elaboratable):
    """Formal testbench: a sender :class:`CreditCounter`, an ideal channel and a receiver.

    Everything the environment decides is a free choice each cycle (``AnySeq``): whether the
    TX starts a packet and its size, how many cells the channel delivers, how many the
    receiver frees and how many credits come back. The assumptions only keep the channel
    ideal (nothing is created or lost in it), so ``credit_conservation`` holds exactly when
    the counter accounts for every accepted consume and restore.

    The harness has no ports; ``sender`` is its only submodule. The model state
    (``data_in_flight``, ``rx_held``, ``credits_in_flight``) is visible in traces.
    """

    def __init__(self, initial, *, max_consume=None, mutant=None):
        self.initial = initial
        self.sender = CreditCounter(initial, max_consume=max_consume, mutant=mutant)

    def elaborate(self, platform):
        m = Module()
        m.submodules.sender = sender = self.sender
        count = range(self.initial + 1)
        # Cells sent but not yet in the receiver's buffer, cells in that buffer, and cells
        # freed by the receiver whose credits have not yet reached the sender.
        data_in_flight = Signal(count)
        rx_held = Signal(count)
        credits_in_flight = Signal(count)

        # Named so that they show in counterexample traces.
        deliver = Signal(count)     # cells the channel hands to the receiver this cycle
        drain = Signal(count)       # cells the receiver frees (its credits start back)
        m.d.comb += [
            deliver.eq(AnySeq(len(deliver))),
            drain.eq(AnySeq(len(drain))),
            sender.consume.eq(AnySeq(1)),
            sender.consume_cells.eq(AnySeq(len(sender.consume_cells))),
            sender.restore.eq(AnySeq(1)),
            sender.restore_cells.eq(AnySeq(len(sender.restore_cells))),
            Assume(deliver <= data_in_flight, "channel_delivers_only_sent_cells"),
            Assume(drain <= rx_held, "receiver_frees_only_held_cells"),
            Assume(~sender.restore | (sender.restore_cells <= credits_in_flight),
                   "channel_returns_only_freed_credits"),
        ]
        sent = Mux(sender.consume & ~sender.consume_refused, sender.consume_cells, 0)
        returned = Mux(sender.restore, sender.restore_cells, 0)
        m.d.sync += [
            data_in_flight.eq(data_in_flight + sent - deliver),
            rx_held.eq(rx_held + deliver - drain),
            credits_in_flight.eq(credits_in_flight + drain - returned),
        ]
        total = data_in_flight + rx_held + credits_in_flight + sender.available
        m.d.comb += Assert(total == self.initial, "credit_conservation")
        return m


# Formal targets for ``ubproto prove`` (registered in ubproto.verify.formal.TARGETS). A small
# buffer keeps proofs fast; the logic does not depend on the size beyond the widths.

def formal_counter(*, initial=6, mutant=None):
    """The counter alone, every input free: its own properties against any TX and RX."""
    return CreditCounter(initial, mutant=mutant)


def formal_loop(*, initial=6, mutant=None):
    """The counter in a credit loop with an ideal channel: adds ``credit_conservation``."""
    return CreditLoopHarness(initial, mutant=mutant)
