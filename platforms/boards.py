"""Board targets on amaranth-boards, and the top level that puts a design on one.

A :class:`BoardTarget` names an ``amaranth_boards`` platform (the board files are used as
they are) and says what the board can carry: which bridge transports (Ethernet needs RGMII,
every board here has a UART), how many RGMII ports, and how to program it. The top level
(:class:`BoardTop`) instantiates the design's core and its transport on the board's pins.

Clocks: UART designs run the whole core on the board's ``sync`` clock, which is its default
clock (no PLL) unless the board names a slower ``sync_hz`` (the ECPIX-5: its 100 MHz
oscillator is faster than the switch can run, so an ECP5 PLL makes 50 MHz,
:mod:`ubproto.platforms.clocks`); their timing target is that clock. Ethernet designs run
the core, the design under test and the ARP/IPv4/UDP stack on the ``sync`` clock too, and the MAC in an ``eth`` domain
clocked by the PHY's 125 MHz RGMII receive clock (:mod:`ubproto.hdl.host.eth.rgmii`); the
frame buffers of :mod:`ubproto.hdl.host.eth.transport` cross between the two.

Pin links (design parameter ``link_pins=connector``, design ``scaleup-link``): a board with a
:class:`PinLinkMap` (the ULX3S: its GPIO header) carries the ``switch-links`` dut's link port
to a second board. The transmit pins leave from IO flip-flops on the local clock, with the
clock itself forwarded on its own pin (an ``ODDRX1F``-style DDR output driven 0 then 1, so
its rising edge sits in the middle of each data bit); the receive pins are sampled by IO
flip-flops in a ``linkrx`` domain clocked by the peer's forwarded clock (docs/scaleup.md).
"""

import importlib
from dataclasses import dataclass

from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Module
from amaranth.lib import io, wiring

from ..config import HilConfig
from ..errors import ConfigError
from ..hdl.host.core import HilCore
from ..hdl.host.uart import SerialTransport
from .designs import (DESIGNS, LINK_PINS, Dut, _dut_entry, build_links_dut, csr_components,
                      default_dut, get_design, traffic_key_byte)
from .designs.lanes import TrafficGen
from .designs.scaleout import ScaleoutSwitch
from .clocks import Ecp5SyncPll, ecp5_pll_dividers
from ..hdl.host.eth.rgmii import RgmiiPhy

#: Clock domain of the Ethernet MAC (the PHY's receive clock).
ETH_DOMAIN = "eth"
#: RGMII line clock at 1000 Mb/s.
RGMII_CLOCK_HZ = 125e6

#: Clock domain of a pin link's receive pins (clocked by the peer's forwarded clock).
LINK_RX_DOMAIN = "linkrx"

#: The ECPIX-5's ``sync`` clock: the switch under test reaches about 60 MHz on the 85F
#: (docs/hil.md), so half the 100 MHz oscillator leaves it a margin.
ECPIX5_SYNC_HZ = 50e6

__all__ = ["BoardTarget", "BOARDS", "get_board", "BoardTop", "PinLinkMap", "ULX3S_PIN_LINK",
           "LINK_RX_DOMAIN"]


@dataclass(frozen=True)
class PinLinkMap:
    """Where a board's pin link goes on one of its amaranth-boards connectors.

    ``tx``/``rx``: connector pin names in signal order -- frame, kind, then data bit 0, 1, ...
    (a build with fewer data pins uses the first ones); ``tx_clk``/``rx_clk``: the forwarded
    clock out and in. A cable joins this board's ``tx_clk``/``tx[i]`` to the peer's
    ``rx_clk``/``rx[i]`` and the other way round (docs/scaleup.md). ``header``: how the pins
    are named on the board (for the docs and errors).
    """
    connector: tuple
    tx_clk: str
    tx: tuple
    rx_clk: str
    rx: tuple
    header: str
    #: Single-ended I/O standard of every pin (docs/scaleup.md says why not LVDS).
    io_type: str = "LVCMOS33"

    @property
    def max_data_pins(self):
        from .designs.pinlink import SIDE_PINS
        return min(len(self.tx), len(self.rx)) - SIDE_PINS

    def resource(self, data_pins, name="pinlink"):
        from .designs.pinlink import SIDE_PINS
        n = data_pins + SIDE_PINS
        conn = self.connector
        out = Attrs(IO_TYPE=self.io_type, DRIVE="8", SLEWRATE="FAST")
        inp = Attrs(IO_TYPE=self.io_type, PULLMODE="DOWN")    # unplugged reads 0: no marks
        return Resource(name, 0,
                        Subsignal("tx_clk", Pins(self.tx_clk, conn=conn, dir="o"), out),
                        Subsignal("tx", Pins(" ".join(self.tx[:n]), conn=conn, dir="o"), out),
                        Subsignal("rx_clk", Pins(self.rx_clk, conn=conn, dir="i"), inp),
                        Subsignal("rx", Pins(" ".join(self.rx[:n]), conn=conn, dir="i"), inp))

    def table(self, data_pins=None):
        """``[(signal, tx pin, rx pin)]``: the pin map (docs/scaleup.md)."""
        from .designs.pinlink import SIDE_PINS
        n = (data_pins if data_pins is not None else self.max_data_pins) + SIDE_PINS
        names = ["frame", "kind"] + [f"data[{i}]" for i in range(n - SIDE_PINS)]
        return [("clock", self.tx_clk, self.rx_clk)] + list(zip(names, self.tx[:n], self.rx[:n]))


def _pairs(first, last):
    return tuple(f"{i}{s}" for i in range(first, last + 1) for s in "+-")


#: ULX3S GPIO header (amaranth-boards connector ``gpio`` 0: ``N+`` = GPn, ``N-`` = GNn). Transmit
#: on GP0..13/GN0..13 (header J1), receive on GP14..27/GN14..27 (header J2).
ULX3S_PIN_LINK = PinLinkMap(("gpio", 0), tx_clk="0+", tx=_pairs(0, 13)[1:],
                            rx_clk="14+", rx=_pairs(14, 27)[1:],
                            header="GPn/GNn = gpio connector pins n+/n-; transmit on GP0..13/"
                                   "GN0..13 (J1), receive on GP14..27/GN14..27 (J2)")


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
    #: Connector pins for a board-to-board pin link (``link_pins=connector``), if any.
    pin_link: PinLinkMap = None
    #: The ``sync`` clock of its designs when slower than the board's oscillator (made by a
    #: PLL, ECP5 only); None: the oscillator itself.
    sync_hz: float = None
    #: ``(design, dut)`` pairs: the dut this board carries for a design when ``dut=`` is not
    #: given, where the design's own default does not fit the device (measured, docs/hil.md).
    small_duts: tuple = ()

    def make_platform(self):
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)()

    def sync_clock_hz(self):
        """The frequency the board's designs run at (``sync``): ``sync_hz`` or the
        oscillator's."""
        return self.sync_hz or self.make_platform().default_clk_frequency

    def default_dut(self, design):
        """The dut ``design`` carries on this board unless ``dut=`` says otherwise."""
        design = design.name if hasattr(design, "name") else design
        return dict(self.small_duts).get(design, default_dut(design))

    def designs(self):
        return [d for d in DESIGNS.values() if set(d.transports) & set(self.transports) and
                (self.pin_link or d.params.get("link_pins", "loopback") != "connector")]


#: The 25F and UP5K boards carry the lanes stand-in in ``scaleup-node``: the switch with a
#: link port takes ~23 k LUT4 on the 85F (docs/hil.md), about all of a 25F's 24 k.
_SMALL_NODE = (("scaleup-node", "lanes"),)

BOARDS = {b.name: b for b in (
    BoardTarget("colorlight-5a75b", "amaranth_boards.colorlight_5a75b_r7_0:Colorlight_5A75B_R70Platform",
                "ecp5", "Colorlight 5A-75B v7.0 (LFE5U-25F, two RGMII ports): the scale-out board",
                ("ethernet", "uart"), 2,
                "openFPGALoader -c ft232 -m build/colorlight-5a75b/top.bit",
                "no USB: program through JTAG (J27) with an FT232H/FT2232 adapter; the UART "
                "resource uses the LED (tx) and button (rx) pins",
                small_duts=_SMALL_NODE),
    BoardTarget("ecpix5-85", "amaranth_boards.ecpix5:ECPIX585Platform", "ecp5",
                "LambdaConcept ECPIX-5 (LFE5UM5G-85F, one RGMII port)", ("ethernet", "uart"), 1,
                "openFPGALoader -b ecpix5 build/ecpix5-85/top.bit",
                "100 MHz oscillator; the designs run at 50 MHz from a PLL", sync_hz=ECPIX5_SYNC_HZ),
    BoardTarget("ecpix5-45", "amaranth_boards.ecpix5:ECPIX545Platform", "ecp5",
                "LambdaConcept ECPIX-5 (LFE5UM5G-45F, one RGMII port)", ("ethernet", "uart"), 1,
                "openFPGALoader -b ecpix5 build/ecpix5-45/top.bit",
                "100 MHz oscillator; the designs run at 50 MHz from a PLL", sync_hz=ECPIX5_SYNC_HZ),
    BoardTarget("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5",
                "Radiona ULX3S (LFE5U-85F): GPIO header pin pairs for board-to-board links",
                ("uart",), 0, "openFPGALoader -b ulx3s build/ulx3s-85f/top.bit",
                pin_link=ULX3S_PIN_LINK),
    BoardTarget("ulx3s-25f", "amaranth_boards.ulx3s:ULX3S_25F_Platform", "ecp5",
                "Radiona ULX3S (LFE5U-25F)", ("uart",), 0,
                "openFPGALoader -b ulx3s build/ulx3s-25f/top.bit",
                pin_link=ULX3S_PIN_LINK, small_duts=_SMALL_NODE),
    BoardTarget("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40",
                "1BitSquared iCEBreaker (iCE40 UP5K): UART bridge only", ("uart",), 0,
                "openFPGALoader -b ice40_generic build/icebreaker/top.bin",
                small_duts=_SMALL_NODE),
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

    ``link_pins``: ``"loopback"`` or ``"connector"`` (default: the design's parameter);
    ``link_data_pins``: data pins of a connector pin link (default: as many as the board's
    :class:`PinLinkMap` holds).
    """

    def __init__(self, board, design, hil=None, *, dut=None, transport=None, link_pins=None,
                 link_data_pins=None):
        self.board = get_board(board) if isinstance(board, str) else board
        self.design = get_design(design) if isinstance(design, str) else design
        self.hil = hil or HilConfig()
        dut = self.board.default_dut(self.design) if dut is None else dut
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
        osc_hz = self.platform.default_clk_frequency
        self.sync_pll = None
        if self.board.sync_clock_hz() != osc_hz:
            if self.board.family != "ecp5":
                raise ConfigError(f"board {self.board.name}: a sync clock from a PLL is only "
                                  f"implemented for ECP5")
            self.sync_pll = ecp5_pll_dividers(osc_hz, self.board.sync_hz)
            self.clock_hz = int(round(self.sync_pll.out_hz))
        else:
            self.clock_hz = int(osc_hz)
        self.link_pins = link_pins or self.design.params.get("link_pins", "loopback")
        if self.link_pins not in LINK_PINS:
            raise ConfigError(f"link_pins must be one of {', '.join(LINK_PINS)}, got "
                              f"{self.link_pins!r}")
        self.link_data_pins = None
        if self.link_pins == "connector":
            self._check_pin_link(dut, transport, link_data_pins)
        elif link_data_pins is not None:
            raise ConfigError("link_data_pins needs link_pins=connector")
        if transport == "ethernet":
            self.scaleout = ScaleoutSwitch(self.hil, dut=dut, clock_hz=self.clock_hz,
                                           mac_domain=ETH_DOMAIN, name=self.design.name)
            self.regmap = self.scaleout.regmap
            return
        bound = _dut_entry(dut)
        if self.link_data_pins:
            self.dut = build_links_dut(self.hil, bound.cfg, pins=self.link_data_pins,
                                       rx_domain=LINK_RX_DOMAIN)
        else:
            self.dut = bound.build(self.hil)
        self.traffic = (TrafficGen(key_byte=traffic_key_byte(dut))
                        if self.design.traffic_generator else None)
        components = csr_components(self.dut) + ([self.traffic] if self.traffic else [])
        self.core = HilCore(components, clock_hz=self.clock_hz, max_request=self.hil.max_request,
                            max_response=self.hil.max_response, name=self.design.name)
        self.regmap = self.core.regmap

    def _check_pin_link(self, dut, transport, data_pins):
        name = Dut.of(dut).name
        where = f"design {self.design.name} on {self.board.name}"
        if name != "switch-links":
            raise ConfigError(f"link_pins=connector needs dut=switch-links (the link ports); "
                              f"{where} has dut={name}")
        if transport != "uart":
            raise ConfigError(f"link_pins=connector: {where} uses the {transport} bridge; pin "
                              f"links are for the UART designs (scaleup-node, scaleup-link)")
        pin_link = self.board.pin_link
        if pin_link is None:
            having = ", ".join(b.name for b in BOARDS.values() if b.pin_link) or "none"
            raise ConfigError(f"board {self.board.name} has no connector map for a "
                              f"board-to-board pin link (link_pins=connector); boards with "
                              f"one: {having}. Use link_pins=loopback on this board")
        ports = _dut_entry(dut).cfg.ports
        if ports != 2:
            raise ConfigError(f"link_pins=connector: the {self.board.name} connector holds one "
                              f"pin link, the dut has {ports - 1} link ports "
                              f"(switch_ports={ports}; use switch_ports=2)")
        most = pin_link.max_data_pins
        data_pins = most if data_pins is None else data_pins
        if isinstance(data_pins, bool) or not isinstance(data_pins, int) or \
                not 2 <= data_pins <= most:
            raise ConfigError(f"link_data_pins must be an integer in 2..{most} (what the "
                              f"{self.board.name} connector holds), got {data_pins!r}")
        self.link_data_pins = data_pins

    def _elaborate_pin_link(self, m, platform):
        """The link port's pins on the connector (class docstring of the module)."""
        link = self.dut.links[0]
        resource = self.board.pin_link.resource(self.link_data_pins)
        platform.add_resources([resource])
        pads = platform.request(resource.name, 0,
                                dir={"tx_clk": "-", "tx": "-", "rx_clk": "-", "rx": "-"})
        pins = self.link_data_pins
        m.domains += ClockDomain(LINK_RX_DOMAIN, reset_less=True)
        m.submodules.pinlink_rx_clk = rx_clk = io.Buffer("i", pads.rx_clk)
        m.d.comb += ClockSignal(LINK_RX_DOMAIN).eq(rx_clk.i)
        # On the port: a constraint on the buffer's net is lost when synthesis renames it.
        platform.add_clock_constraint(pads.rx_clk.io, self.clock_hz)
        # Forwarded clock: low in the first half of each local clock, high in the second.
        m.submodules.pinlink_tx_clk = tx_clk = io.DDRBuffer("o", pads.tx_clk, o_domain="sync")
        m.d.comb += [tx_clk.o[0].eq(0), tx_clk.o[1].eq(1)]
        # Connector order: frame, kind, data[0..]; LinkPort order: data[0..], frame, kind.
        m.submodules.pinlink_tx = tx = io.FFBuffer("o", pads.tx, o_domain="sync")
        m.submodules.pinlink_rx = rx = io.FFBuffer("i", pads.rx, i_domain=LINK_RX_DOMAIN)
        m.d.comb += [tx.o.eq(Cat(link.tx_pins[pins:], link.tx_pins[:pins])),
                     link.rx_pins.eq(Cat(rx.i[2:], rx.i[:2]))]

    def _elaborate_sync_clock(self, m, platform):
        """The ``sync`` domain from a PLL when the board asks for one (else the platform
        makes it from the default clock)."""
        if self.sync_pll is None:
            return
        osc = platform.request(platform.default_clk, dir="-")
        m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
        # Named as Amaranth names the domain it makes itself, so the clock net keeps the
        # name ``cd_sync.clk`` through synthesis and the report calls it ``sync``.
        m.submodules.cd_sync = Ecp5SyncPll(osc_buf.i, self.sync_pll.in_hz,
                                           self.board.sync_hz)

    def elaborate(self, platform):
        if self.transport == "ethernet":
            m = self._elaborate_ethernet(platform)
            self._elaborate_sync_clock(m, platform)
            return m
        m = Module()
        self._elaborate_sync_clock(m, platform)
        m.submodules.core = core = self.core
        m.submodules.dut = dut = self.dut
        if self.link_data_pins:
            self._elaborate_pin_link(m, platform)
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
