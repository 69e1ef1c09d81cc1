"""The host-bridge core of a board design: identity block, bridge engine, decoder, map.

``HilCore(components)`` collects the :class:`~ubproto.hdl.host.regmap.Block` of every
CSR-bearing component (anything with a ``csr_block`` attribute and a ``csr`` port), adds the
``sys`` and ``bridge`` blocks, places them in one :class:`RegisterMap` (``core.regmap``) and
wires a decoder from the bridge to every component's ``csr`` port. The design adds the
components as submodules itself (they also have data ports to connect) and connects the
core's ``rx``/``tx`` to a transport (SLIP/UART, Ethernet).
"""

from amaranth.hdl import Const, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from .bridge import BridgeEngine, bridge_block
from .csr import CsrBank, CsrDecoder, csr_signature
from .protocol import DEFAULT_MAX_REQUEST, DEFAULT_MAX_RESPONSE
from .regmap import Block, Register, RegisterMap
from .streams import byte_stream

__all__ = ["HilCore", "SysInfo", "sys_block", "IDENT", "core_regmap"]

#: ``sys.ident``: "UBPT" in ASCII, so a host can tell it reached a ubproto bridge.
IDENT = 0x55425054


def sys_block():
    return Block("sys", (
        Register("ident", "ro", "0x55425054 ('UBPT'): this is a ubproto board"),
        Register("map_id", "ro", "identity of the register map the design was built with"),
        Register("clock_hz", "ro", "frequency of the clock the bridge runs on"),
        Register("scratch", "rw", "free for host tests; reset to 0"),
    ), doc="board identity")


class SysInfo(wiring.Component):
    """The ``sys`` block: constants that identify the design, and a scratch register."""

    def __init__(self, *, map_id=0, clock_hz=0):
        self.map_id = map_id
        self.clock_hz = clock_hz
        self.csr_block = sys_block()
        super().__init__({"csr": In(csr_signature(self.csr_block.span_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        m.d.comb += [bank.ident.eq(Const(IDENT, 32)), bank.map_id.eq(Const(self.map_id, 32)),
                     bank.clock_hz.eq(Const(int(self.clock_hz), 32))]
        return m


def core_regmap(component_blocks, name="ubproto"):
    """The map a :class:`HilCore` over components with these blocks has (no hardware built)."""
    return RegisterMap([sys_block(), bridge_block(), *component_blocks], name=name)


def _check_csr_component(component):
    block = getattr(component, "csr_block", None)
    if not isinstance(block, Block) or "csr" not in getattr(component, "signature", {}).members:
        raise ConfigError(f"{type(component).__name__} is not a CSR component: it needs a "
                          f"csr_block (Block) and a 'csr' port")
    return block


class HilCore(wiring.Component):
    """Bridge + decoder + identity for ``components`` (see the module docstring).

    Members
    -------
    rx : In(byte_stream())    request frames from a transport
    tx : Out(byte_stream())   answers to the transport
    tx_length : Out(16)       length of the answer being sent
    busy : Out(1)
    """

    def __init__(self, components=(), *, clock_hz=0, max_request=DEFAULT_MAX_REQUEST,
                 max_response=DEFAULT_MAX_RESPONSE, name="ubproto"):
        self.components = list(components)
        self.engine = BridgeEngine(max_request=max_request, max_response=max_response)
        self.regmap = core_regmap([_check_csr_component(c) for c in self.components], name)
        self.sys = SysInfo(map_id=self.regmap.map_id, clock_hz=clock_hz)
        super().__init__({
            "rx": In(byte_stream()),
            "tx": Out(byte_stream()),
            "tx_length": Out(16),
            "busy": Out(1),
            "exec_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.sys = self.sys
        m.submodules.decoder = decoder = CsrDecoder(self.regmap)
        wiring.connect(m, engine.bus, decoder.bus)
        wiring.connect(m, decoder.sys, self.sys.csr)
        wiring.connect(m, getattr(decoder, engine.csr_block.name), engine.csr)
        for component in self.components:
            wiring.connect(m, getattr(decoder, component.csr_block.name), component.csr)
        wiring.connect(m, wiring.flipped(self.rx), engine.rx)
        wiring.connect(m, engine.tx, wiring.flipped(self.tx))
        m.d.comb += [self.tx_length.eq(engine.tx_length), self.busy.eq(engine.busy),
                     self.exec_cycles.eq(engine.exec_cycles)]
        return m
