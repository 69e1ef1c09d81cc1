"""CSR bus, generated register banks and the address decoder.

The bus (:func:`csr_signature`) is deliberately minimal: one access per cycle, addressed in
32-bit words, and a fixed latency of one cycle for the answer::

    cycle t:   addr, r_stb or w_stb (+ w_data)          (master -> bank)
    cycle t+1: r_data (reads), err (reads and writes)   (bank -> master)

``err`` says the access hit no register, or wrote a read-only one; such a write changes
nothing. A fixed latency lets the bridge pipeline accesses without a handshake, and a
table's memory answers in exactly one cycle through a synchronous read port.

A component with registers declares a :class:`~ubproto.hdl.host.regmap.Block` and
instantiates ``CsrBank(block)``; the bank's ports are named after the registers
(see :class:`CsrBank`). A design then puts all blocks into a
:class:`~ubproto.hdl.host.regmap.RegisterMap` and connects each bank's ``bus`` to the
matching port of a :class:`CsrDecoder`.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .regmap import ADDR_BITS, DATA_BITS, Block, RegisterMap

__all__ = ["csr_signature", "table_signature", "CsrBank", "CsrDecoder"]


def csr_signature(addr_bits=ADDR_BITS):
    """The bus, seen from the master (the bridge)."""
    return wiring.Signature({
        "addr": Out(addr_bits),
        "r_stb": Out(1),
        "w_stb": Out(1),
        "w_data": Out(DATA_BITS),
        "r_data": In(DATA_BITS),
        "err": In(1),
    })


def table_signature(index_bits, width):
    """A table's memory port, seen from the bank: read data one cycle after ``addr``."""
    return wiring.Signature({
        "addr": Out(index_bits),
        "r_data": In(width),
        "w_en": Out(1),
        "w_data": Out(width),
    })


def _shape(reg):
    return data.ArrayLayout(reg.width, reg.count) if reg.count > 1 else reg.width


class CsrBank(wiring.Component):
    """The registers of one :class:`Block`, generated from its description.

    Ports (besides ``bus``), per register ``r`` of the block:

    ``ro``     ``In(width)`` named ``r`` (an array of ``count`` if ``count > 1``): the value
               software reads.
    ``rw``     ``Out(width)`` named ``r``: the stored value (reset to ``r.reset``).
    ``wo``     ``Out(width)`` named ``r`` and ``Out(1)`` named ``r_stb``: the data of the
               last write and a one-cycle pulse when written (for arrays ``r_stb`` is one bit
               per entry).
    ``table``  ``Out(table_signature(...))`` named ``r``: the component keeps the memory and
               answers ``r.addr`` with ``r.r_data`` one cycle later.
    """

    def __init__(self, block):
        if not isinstance(block, Block):
            raise TypeError(f"CsrBank needs a Block, got {type(block).__name__}")
        self.block = block
        members = {"bus": In(csr_signature(block.span_bits))}
        for reg in block.registers:
            if reg.access == "ro":
                members[reg.name] = In(_shape(reg))
            elif reg.access == "rw":
                members[reg.name] = Out(_shape(reg), init=(
                    [reg.reset] * reg.count if reg.count > 1 else reg.reset))
            elif reg.access == "wo":
                members[reg.name] = Out(_shape(reg))
                members[f"{reg.name}_stb"] = Out(reg.count)
            else:  # table
                members[reg.name] = Out(table_signature((reg.count - 1).bit_length(),
                                                        reg.width))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        r_data = Signal(DATA_BITS)      # value of a stored/driven register, registered
        err = Signal()
        table_sel = Signal(len(self.block.registers))  # one-hot: last read was of table i
        m.d.sync += [err.eq(0), table_sel.eq(0)]

        for reg in self.block.registers:
            if reg.access == "wo":
                m.d.sync += getattr(self, f"{reg.name}_stb").eq(0)

        hit = Signal()
        with m.Switch(bus.addr):
            for i, (offset, reg) in enumerate(self.block.layout()):
                port = getattr(self, reg.name)
                for index in range(reg.count):
                    word = port[index] if reg.count > 1 and reg.access != "table" else port
                    with m.Case(offset + index):
                        m.d.comb += hit.eq(1)
                        if reg.access == "table":
                            m.d.comb += port.addr.eq(index)
                            with m.If(bus.r_stb):
                                m.d.sync += table_sel.eq(1 << i)
                            with m.If(bus.w_stb):
                                m.d.comb += [port.w_en.eq(1), port.w_data.eq(bus.w_data)]
                        elif reg.access == "ro":
                            with m.If(bus.r_stb):
                                m.d.sync += r_data.eq(word)
                            with m.If(bus.w_stb):
                                m.d.sync += err.eq(1)
                        elif reg.access == "rw":
                            with m.If(bus.r_stb):
                                m.d.sync += r_data.eq(word)
                            with m.If(bus.w_stb):
                                m.d.sync += word.eq(bus.w_data[:reg.width])
                        else:  # wo: reads as zero
                            with m.If(bus.r_stb):
                                m.d.sync += r_data.eq(0)
                            with m.If(bus.w_stb):
                                m.d.sync += [word.eq(bus.w_data[:reg.width]),
                                             getattr(self, f"{reg.name}_stb")[index].eq(1)]
        with m.If((bus.r_stb | bus.w_stb) & ~hit):
            m.d.sync += err.eq(1)

        result = r_data
        for i, reg in enumerate(self.block.registers):
            if reg.access == "table":
                result = Mux(table_sel[i], getattr(self, reg.name).r_data, result)
        m.d.comb += [bus.r_data.eq(result), bus.err.eq(err)]
        return m


class CsrDecoder(wiring.Component):
    """Routes the bridge's ``bus`` to one port per block of ``regmap`` (named like the block).

    An access outside every block answers ``err``. The answer path is a mux selected by a
    register of which block was addressed, so the bus latency stays one cycle.
    """

    def __init__(self, regmap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"CsrDecoder needs a RegisterMap, got {type(regmap).__name__}")
        self.regmap = regmap
        members = {"bus": In(csr_signature(ADDR_BITS))}
        for block in regmap.blocks:
            members[block.name] = Out(csr_signature(block.span_bits))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        blocks = self.regmap.blocks
        selected = Signal(range(len(blocks) + 1))   # len(blocks) = nothing
        miss = Signal()
        m.d.sync += miss.eq(0)
        any_hit = Signal()
        for i, block in enumerate(blocks):
            port = getattr(self, block.name)
            base = self.regmap.bases[block.name]
            bits = block.span_bits
            hit = Signal(name=f"hit_{block.name}")
            m.d.comb += [
                hit.eq(bus.addr[bits:] == (base >> bits)),
                port.addr.eq(bus.addr[:bits]),
                port.w_data.eq(bus.w_data),
                port.r_stb.eq(bus.r_stb & hit),
                port.w_stb.eq(bus.w_stb & hit),
            ]
            with m.If(hit):
                m.d.comb += any_hit.eq(1)
                with m.If(bus.r_stb | bus.w_stb):
                    m.d.sync += selected.eq(i)
        with m.If((bus.r_stb | bus.w_stb) & ~any_hit):
            m.d.sync += [miss.eq(1), selected.eq(len(blocks))]

        r_data, err = Const(0, DATA_BITS), miss
        for i, block in enumerate(blocks):
            port = getattr(self, block.name)
            r_data = Mux(selected == i, port.r_data, r_data)
            err = err | ((selected == i) & port.err)
        m.d.comb += [bus.r_data.eq(r_data), bus.err.eq(err)]
        return m
