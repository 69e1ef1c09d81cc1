"""Board targets on amaranth-boards, and the top level that puts a design on one.

A :class:`BoardTarget` names an ``amaranth_boards`` platform (the board files are used as
they are) and says what the board can carry: which bridge transports (Ethernet needs RGMII,
every board here has a UART), how many RGMII ports, and how to program it. The top level
(:class:`BoardTop`) instantiates the design's core and its transport on the board's pins.

Clocks: UART designs run the whole core on the board's default clock, so they need no PLL
and their timing target is that clock. Ethernet designs run the core, the design under
test and the ARP/IPv4/UDP stack on the default clock too, and the MAC in an ``eth`` domain
clocked by the PHY's 125 MHz RGMII receive clock (:mod:`ubproto.hdl.host.eth.rgmii`); the
frame buffers of :mod:`ubproto.hdl.host.eth.transport` cross between the two.
"""

import importlib
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.lib import io, wiring

from ..config import HilConfig
from ..errors import ConfigError
from ..hdl.host.core import HilCore
from ..hdl.host.uart import SerialTransport
from .designs import (DESIGNS, _dut_entry, csr_components, default_dut, get_design,
                      traffic_key_byte)
from .designs.lanes import TrafficGen
from .designs.scaleout import ScaleoutSwitch
from ..hdl.host.eth.rgmii import RgmiiPhy

#: Clock domain of the Ethernet MAC (the PHY's receive clock).
ETH_DOMAIN = "eth"
#: RGMII line clock at 1000 Mb/s.
RGMII_CLOCK_HZ = 125e6

__all__ = ["BoardTarget", "BOARDS", "get_board", "BoardTop"]


@dataclass(frozen=True)
class BoardTarget:
    name: str
    platform: str            # "module:Class" in amaranth_boards
    family: str              # "ecp5" | "ice40"
    description: str
    transports: tuple        # bridge transports the board can carry
    rgmii_ports: int
    program: str             # openFPGALoader command (docs/hil.md)
    notes: str = ""

    def make_platform(self):
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)()

    def designs(self):
        return [d for d in DESIGNS.values() if set(d.transports) & set(self.transports)]


BOARDS = {b.name: b for b in (
    BoardTarget("colorlight-5a75b", "amaranth_boards.colorlight_5a75b_r7_0:Colorlight_5A75B_R70Platform",
                "ecp5", "Colorlight 5A-75B v7.0 (LFE5U-25F, two RGMII ports): the scale-out board",
                ("ethernet", "uart"), 2,
                "openFPGALoader -c ft232 -m build/colorlight-5a75b/top.bit",
                "no USB: program through JTAG (J27) with an FT232H/FT2232 adapter; the UART "
                "resource uses the LED (tx) and button (rx) pins"),
    BoardTarget("ecpix5-85", "amaranth_boards.ecpix5:ECPIX585Platform", "ecp5",
                "LambdaConcept ECPIX-5 (LFE5UM5G-85F, one RGMII port)", ("ethernet", "uart"), 1,
                "openFPGALoader -b ecpix5 build/ecpix5-85/top.bit"),
    BoardTarget("ecpix5-45", "amaranth_boards.ecpix5:ECPIX545Platform", "ecp5",
                "LambdaConcept ECPIX-5 (LFE5UM5G-45F, one RGMII port)", ("ethernet", "uart"), 1,
                "openFPGALoader -b ecpix5 build/ecpix5-45/top.bit"),
    BoardTarget("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5",
                "Radiona ULX3S (LFE5U-85F): LVDS pin pairs for board-to-board links",
                ("uart",), 0, "openFPGALoader -b ulx3s build/ulx3s-85f/top.bit"),
    BoardTarget("ulx3s-25f", "amaranth_boards.ulx3s:ULX3S_25F_Platform", "ecp5",
                "Radiona ULX3S (LFE5U-25F)", ("uart",), 0,
                "openFPGALoader -b ulx3s build/ulx3s-25f/top.bit"),
    BoardTarget("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40",
                "1BitSquared iCEBreaker (iCE40 UP5K): UART bridge only", ("uart",), 0,
                "openFPGALoader -b ice40_generic build/icebreaker/top.bin"),
)}


def get_board(name):
    try:
        return BOARDS[name]
    except KeyError:
        raise ConfigError(f"unknown board {name!r}; boards: {', '.join(BOARDS)}") from None


class BoardTop(Elaboratable):
    """``design`` on ``board`` with parameters ``hil`` (a :class:`HilConfig`).

    ``self.regmap`` is the register map the bitstream will have (``ubproto build`` writes it
    next to the bitstream as regmap.json).
    """

    def __init__(self, board, design, hil=None, *, dut=None, transport=None):
        self.board = get_board(board) if isinstance(board, str) else board
        self.design = get_design(design) if isinstance(design, str) else design
        self.hil = hil or HilConfig()
        dut = default_dut(self.design.name) if dut is None else dut
        self.platform = self.board.make_platform()
        usable = [t for t in self.design.transports if t in self.board.transports]
        if transport is None:
            if not usable:
                raise ConfigError(
                    f"design {self.design.name} needs the "
                    f"{' or '.join(self.design.transports)} bridge transport; board "
                    f"{self.board.name} has {', '.join(self.board.transports)}")
            transport = usable[0]
        elif transport not in usable:
            raise ConfigError(f"transport {transport!r} is not possible for {self.design.name} "
                              f"on {self.board.name}; possible: {', '.join(usable) or 'none'}")
        self.transport = transport
        self.clock_hz = int(self.platform.default_clk_frequency)
        if transport == "ethernet":
            self.scaleout = ScaleoutSwitch(self.hil, dut=dut, clock_hz=self.clock_hz,
                                           mac_domain=ETH_DOMAIN, name=self.design.name)
            self.regmap = self.scaleout.regmap
            return
        self.dut = _dut_entry(dut).build(self.hil)
        self.traffic = (TrafficGen(key_byte=traffic_key_byte(dut))
                        if self.design.traffic_generator else None)
        components = csr_components(self.dut) + ([self.traffic] if self.traffic else [])
        self.core = HilCore(components, clock_hz=self.clock_hz, max_request=self.hil.max_request,
                            max_response=self.hil.max_response, name=self.design.name)
        self.regmap = self.core.regmap

    def elaborate(self, platform):
        if self.transport == "ethernet":
            return self._elaborate_ethernet(platform)
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.dut = dut = self.dut
        if self.traffic:
            m.submodules.traffic = traffic = self.traffic
            wiring.connect(m, traffic.tx, dut.rx)
            wiring.connect(m, dut.tx, traffic.rx)
        m.submodules.serial = serial = SerialTransport(self.clock_hz, self.hil.uart_baud)
        uart = platform.request("uart", 0)
        m.d.comb += [serial.rx.eq(uart.rx.i), uart.tx.o.eq(serial.tx)]
        wiring.connect(m, serial.o, core.rx)
        wiring.connect(m, core.tx, serial.i)
        return m

    def _elaborate_ethernet(self, platform):
        m = Module()
        m.submodules.scaleout = scaleout = self.scaleout
        # Every pin raw: the DDR registers are instantiated by RgmiiPhy; MDIO/MDC stay unused.
        pads = platform.request("eth_rgmii", 0,
                                dir={n: "-" for n in _rgmii_subsignals(platform)})
        m.domains += ClockDomain(ETH_DOMAIN)           # clocked by RgmiiPhy (PHY RX clock)
        m.submodules.rgmii = phy = RgmiiPhy(pads, domain=ETH_DOMAIN)
        platform.add_clock_constraint(pads.rx_clk.io, RGMII_CLOCK_HZ)
        wiring.connect(m, phy.gmii_rx, scaleout.gmii_rx)
        wiring.connect(m, scaleout.gmii_tx, phy.gmii_tx)
        # PHY out of reset (the pin is active low; the port's inversion makes 0 mean "run").
        m.submodules.phy_rst = phy_rst = io.Buffer("o", pads.rst)
        m.d.comb += phy_rst.o.eq(0)
        return m


def _rgmii_subsignals(platform):
    resource = platform.lookup("eth_rgmii", 0)
    return {io.name for io in resource.ios}
