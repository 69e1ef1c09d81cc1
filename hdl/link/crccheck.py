"""SplitCrc30Check: the receiver's block CRC30 check, with the compare split for speed.

A block checks when the CRC30 over its bytes equals its trailer. The CRC is linear: over a
block's last flit, ``crc = F_tail(state) ^ G_tail(data)`` (``F`` the running-state half,
``G`` the data half of the parallel update, see :mod:`..proto.crc30`). The check

    F_tail(state) ^ G_tail(data) == trailer   <=>   F_tail(state) == G_tail(data) ^ trailer

has a right-hand side that depends on the flit alone: it is computed from the wire a cycle
ahead and registered (``expect``). The left-hand side depends only on the running register
(or is a constant at a block's first flit, where the state is the initial value), so the
compare needs neither the receiver's block-end decision (``last``) nor the wide data
network in its cycle: ``first`` only selects between two compares of registers. (A plain
:class:`~..proto.crc30.FlitCrc30` computes the CRC, selects the full or the last-flit
network by ``last``, then compares.)

``data`` is given one cycle before the flit's ``valid``/``first``/``last`` and sampled every
cycle, as with ``FlitCrc30(data_ahead=True)``. ``match`` is meaningful on a block's last
flit. The running register is FlitCrc30's (``running_crc30``), so one block at a time.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ..proto.crc30 import _update_matrix, _xor_network, crc30_update, running_crc30
from ..proto.formats import BCRC_BYTES, CRC30_INIT, CRC30_WIDTH, FLIT_BYTES

__all__ = ["SplitCrc30Check"]


class SplitCrc30Check(wiring.Component):
    """Ports: ``data`` (In, a flit a cycle ahead), ``valid``, ``first``, ``last`` (In, the
    flit's place in its block), ``match`` (Out: the flit's trailer is its block's CRC30)."""

    flit_bits = 8 * FLIT_BYTES
    tail_bits = 8 * (FLIT_BYTES - BCRC_BYTES)

    #: Mutants (``SplitCrc30Check(mutant=...)``), each caught by tests/test_link_units.py.
    MUTANTS = {"first_uses_register": "a block's first flit is checked against the running "
                                      "register, not the initial value"}

    def __init__(self, mutant=None):
        if mutant is not None and mutant not in self.MUTANTS:
            raise ConfigError(f"SplitCrc30Check: unknown mutant {mutant!r}; known: "
                              f"{', '.join(self.MUTANTS)}")
        self.mutant = mutant
        super().__init__({
            "data": In(self.flit_bits),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "match": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        none = [[] for _ in range(CRC30_WIDTH)]
        ones = [[i] for i in range(CRC30_WIDTH)]
        f_full, g_full = _update_matrix(self.flit_bits)
        f_tail, g_tail = _update_matrix(self.tail_bits)
        zeros = Signal(CRC30_WIDTH)
        tail_data = self.data[self.flit_bits - self.tail_bits:]
        trailer = self.data[:CRC30_WIDTH]

        # A cycle ahead, from the wire: the full flit's data half (for the running register)
        # and the last flit's data half XOR its trailer (the compare's right-hand side).
        g_full_r = Signal(CRC30_WIDTH, name="crc_g_full")
        expect = Signal(CRC30_WIDTH, name="crc_expect")
        m.d.sync += [
            g_full_r.eq(_xor_network(m, zeros, self.data, none, g_full, "crc_g_full_d")),
            expect.eq(_xor_network(m, zeros, tail_data, none, g_tail, "crc_g_tail_d") ^
                      trailer),
        ]

        # The running register, by FlitCrc30's rule (one helper for both).
        reg, _, _ = running_crc30(
            m, self.valid, self.first, self.last,
            lambda st: _xor_network(m, st, g_full_r, f_full, ones, "crc_full"),
            reg_name="crc_reg")

        # F_tail of the initial state is a constant: the CRC30 register after the tail's
        # bytes, all zero (G of zero data is zero). Of the register, a network of registers.
        init_tail = crc30_update(CRC30_INIT, bytes(self.tail_bits // 8))
        reg_tail = _xor_network(m, reg, zeros, f_tail, none, "crc_reg_tail")
        first = 0 if self.mutant == "first_uses_register" else self.first
        m.d.comb += self.match.eq(Mux(first, expect == init_tail, reg_tail == expect))
        return m
