"""Board designs: what goes on the FPGA, as parameters -> Amaranth elaboratable.

Every design is the same three layers, so that one Python model and one HIL test serve
all of them:

* a **design under test** in a slot (``dut``): today :class:`~ubproto.platforms.designs.lanes.LaneLoopback`
  (routed loopback lanes with a table and counters); the switch and link components plug in
  here when they exist -- anything with ``rx``/``tx`` packet streams and, optionally, a
  ``csr_block`` + ``csr`` port (see :func:`register_dut`);
* the **host bridge core** (:class:`~ubproto.hdl.host.core.HilCore`): register map, bridge
  engine, decoder;
* a **transport** chosen by the board: Ethernet (RGMII MAC + ARP/IPv4/UDP responder) or
  UART with SLIP framing.

:func:`make_core` builds the first two for hardware and simulation; :func:`make_model`
builds the equivalent Python model (``model://`` targets). The board tops that add clocks,
pins and transports are in :mod:`ubproto.platforms.boards`.
"""

from dataclasses import dataclass

from ...config import HilConfig
from ...errors import ConfigError
from ...hdl.host.core import HilCore, core_regmap
from ...hdl.host.model import RegisterSpace
from ...hdl.host.protocol import BridgeModel
from .lanes import (LaneLoopback, LaneLoopbackModel, TrafficGenModel, lanes_block,
                    traffic_block)

__all__ = ["make_core", "make_model", "design_regmap", "ModelBoard", "register_dut", "DUTS",
           "DESIGNS", "DesignInfo", "get_design", "Dut", "default_dut", "csr_components",
           "DEFAULT_HIL_DUT", "LINK_PINS", "build_links_dut"]


@dataclass(frozen=True)
class DutEntry:
    """How to build a design under test and its Python model.

    ``build(hil, cfg)``, ``blocks(hil, cfg)``, ``model(space, hil, cfg)``; ``config(params)``
    turns the dut's own parameters (a dict, e.g. ``{"ports": 3}`` for the switch) into its
    validated configuration object (``None`` for duts configured by :class:`HilConfig`
    alone). ``fits(board)``: whether the default size fits that board (docs/hil.md).
    """
    name: str
    build: object        # fn(hil, cfg) -> component with rx/tx (and csr_block/csr, or csr_components)
    blocks: object       # fn(hil, cfg) -> [Block] its CSR blocks (without building hardware)
    model: object        # fn(space, hil, cfg) -> object with send(packet) -> [packets]
    description: str
    config: object = None     # fn(params: dict) -> cfg
    #: Prefix of its parameters on ``ubproto build --param`` (``switch_ports=3``).
    param_prefix: str = ""


DUTS = {}


def register_dut(name, build, blocks, model, description, *, config=None, param_prefix=""):
    """Make a component available for the ``dut`` slot of every design."""
    DUTS[name] = DutEntry(name, build, blocks, model, description, config, param_prefix)


@dataclass(frozen=True)
class Dut:
    """A design under test chosen by name, with its own parameters (``dut`` arguments take
    a name, a ``Dut``, or ``(name, params)``)."""
    name: str
    params: tuple = ()

    @classmethod
    def of(cls, dut):
        if isinstance(dut, Dut):
            return dut
        if isinstance(dut, tuple):
            name, params = dut
            return cls(name, tuple(sorted(dict(params).items())))
        return cls(dut)


class _BoundDut:
    """A :class:`DutEntry` with its configuration resolved (what the builders call)."""

    def __init__(self, entry, params):
        self.entry = entry
        self.name = entry.name
        if entry.config is None:
            if params:
                raise ConfigError(f"dut {entry.name} takes no parameters of its own, got "
                                  f"{', '.join(params)}")
            self.cfg = None
        else:
            self.cfg = entry.config(params)

    def build(self, hil):
        return self.entry.build(hil, self.cfg)

    def blocks(self, hil):
        return self.entry.blocks(hil, self.cfg)

    def model(self, space, hil):
        return self.entry.model(space, hil, self.cfg)


register_dut(
    "lanes",
    lambda hil, cfg: LaneLoopback(lanes=hil.lanes, table_size=hil.route_table_size,
                                  lane_depth=hil.lane_depth),
    lambda hil, cfg: [lanes_block(hil.lanes, hil.route_table_size)],
    lambda space, hil, cfg: LaneLoopbackModel(space, lanes=hil.lanes,
                                              table_size=hil.route_table_size),
    "routed loopback lanes with a route table and per-lane counters (stand-in)")


def _switch_blocks(hil, cfg):
    from ...hdl.switch.regs import switch_block
    from .switch import dataplane_block
    return [switch_block(cfg), dataplane_block(cfg.ports)]


def _switch_build(hil, cfg):
    from .switch import SwitchDut
    return SwitchDut(cfg)


def _switch_model(space, hil, cfg):
    from .switch import SwitchDutModel
    return SwitchDutModel(space, cfg)


def _switch_config(params):
    from .switch import switch_config
    return switch_config(params)


register_dut(
    "switch", _switch_build, _switch_blocks, _switch_model,
    "the switch of hdl/switch: port 0 is the host data plane, ports 1.. reflect packets "
    "(SCNA/DCNA swapped); switch + dataplane register blocks",
    config=_switch_config, param_prefix="switch_")

def _links_config(params):
    from .switch import switch_config
    return switch_config({"ports": 2, **params})


def _links_blocks(hil, cfg):
    from .switch import links_block
    return _switch_blocks(hil, cfg) + [links_block(cfg.ports - 1)]


#: Where the link ports of the ``switch-links`` dut have their pins (design parameter
#: ``link_pins``): looped on chip, or on the board's connector to a second board
#: (docs/scaleup.md; the board top routes them, :mod:`ubproto.platforms.boards`).
LINK_PINS = ("loopback", "connector")


def build_links_dut(hil, cfg, *, pins=32, rx_domain=None):
    """The ``switch-links`` dut with ``pins`` data pins per link; ``rx_domain``: the clock
    domain its link ports receive in (a forwarded clock), ``None`` to loop them on chip."""
    from .switch import SwitchDut
    dut = SwitchDut(cfg, link_ports=cfg.ports - 1, pins=pins)
    if rx_domain is not None:
        for link in dut.links:
            link.receive_in(rx_domain)
    return dut


def _links_build(hil, cfg):
    return build_links_dut(hil, cfg)


def _links_model(space, hil, cfg):
    from .switch import SwitchDutModel
    return SwitchDutModel(space, cfg, link_ports=cfg.ports - 1)


register_dut(
    "switch-links", _links_build, _links_blocks, _links_model,
    "the switch with link-layer ports: every port but the host's is a LinkEndpoint + fault "
    "injector + pin serializer looped back (default 2 ports); links register block",
    config=_links_config, param_prefix="switch_")

#: The design under test of HIL targets opened without naming one (model://, sim+udp://).
DEFAULT_HIL_DUT = "switch"


def _dut_entry(dut):
    dut = Dut.of(dut)
    try:
        entry = DUTS[dut.name]
    except KeyError:
        raise ConfigError(f"unknown design under test {dut.name!r}; known: "
                          f"{', '.join(DUTS)}") from None
    return _BoundDut(entry, dict(dut.params))


def csr_components(component):
    """The CSR-bearing parts of a design under test (``csr_components`` or itself)."""
    parts = getattr(component, "csr_components", None)
    if parts is not None:
        return list(parts)
    return [component] if hasattr(component, "csr_block") else []


def make_core(hil=None, *, dut="lanes", clock_hz=0, name="ubproto"):
    """``(core, dut_component)`` for ``hil`` (a :class:`HilConfig`)."""
    hil = hil or HilConfig()
    component = _dut_entry(dut).build(hil)
    core = HilCore(csr_components(component), clock_hz=clock_hz, max_request=hil.max_request,
                   max_response=hil.max_response, name=name)
    return core, component


class ModelBoard:
    """The Python model of a board: register space + bridge model + DUT model.

    ``answer(frame)`` is the bridge; ``send(packet) -> [packets]`` is data-plane port 0.
    """

    def __init__(self, hil=None, *, dut=None, clock_hz=0, name=None, design=None):
        hil = hil or HilConfig()
        dut = default_dut(design) if dut is None else dut
        entry = _dut_entry(dut)
        info = get_design(design) if design else None
        with_traffic = bool(info and info.traffic_generator)
        self.regmap = design_regmap(hil, dut=dut, design=design, name=name)
        self.space = RegisterSpace(self.regmap, clock_hz=clock_hz)
        self.bridge = BridgeModel(self.space, max_request=hil.max_request,
                                  max_response=hil.max_response)
        self.bridge.attach(self.space)
        self.dut = entry.model(self.space, hil)
        self.traffic = (TrafficGenModel(self.space, self.dut, key_byte=traffic_key_byte(dut))
                        if with_traffic else None)

    def answer(self, frame, *, transport_error=False):
        return self.bridge.answer(frame, transport_error=transport_error)

    def send(self, packet):
        return self.dut.send(packet)


def make_model(hil=None, **kwargs):
    return ModelBoard(hil, **kwargs)


def traffic_key_byte(dut):
    """Byte of the first word the on-board generator puts its ``key`` in, for ``dut``."""
    from .lanes import ROUTE_KEY_BYTE
    if Dut.of(dut).name in ("switch", "switch-links"):
        from .switch import DCNA_BYTE
        return DCNA_BYTE + 1          # DCNA's low byte (the high byte stays 0)
    return ROUTE_KEY_BYTE


def default_dut(design=None):
    """The dut a design carries unless told otherwise ("lanes" for the plain core)."""
    return get_design(design).params["dut"] if design else "lanes"


def design_regmap(hil=None, *, dut=None, design=None, name=None):
    """The register map of ``design`` (or of the plain core + DUT), without building it.

    Board designs name their map after the design; the simulated board and the model use
    the plain core's name ("ubproto").
    """
    hil = hil or HilConfig()
    dut = default_dut(design) if dut is None else dut
    blocks = list(_dut_entry(dut).blocks(hil))
    if design and get_design(design).traffic_generator:
        blocks.append(traffic_block())
    if design and "ethernet" in get_design(design).transports:
        from ...hdl.host.eth.transport import eth_block
        blocks.append(eth_block())
    return core_regmap(blocks, name or design or "ubproto")


# --- named designs (ubproto build --design NAME) ---------------------------------------------

@dataclass(frozen=True)
class DesignInfo:
    name: str
    description: str
    #: Transports the design can carry its bridge over, best first.
    transports: tuple
    #: Parameters a user may set with --param k=v (HilConfig fields plus the design's own).
    params: dict
    #: An on-board packet generator/sink drives the design under test (no host data path).
    traffic_generator: bool = False


DESIGNS = {d.name: d for d in (
    DesignInfo(
        "scaleout-switch",
        "design under test behind the Ethernet MAC: UB over UDP port 4792 on the data "
        "plane, CSR bridge on its own UDP port (and raw EtherType), ARP responder",
        ("ethernet",),
        {"dut": "switch"}),
    DesignInfo(
        "scaleup-node",
        "the scale-up node: switch with link-layer ports (LinkEndpoint + fault injector + "
        "pin PHY; looped on chip, or to a second board with link_pins=connector), driven by "
        "an on-board traffic generator and sink, CSR bridge over UART (SLIP); boards too "
        "small for it default to a smaller dut (--param dut=switch or lanes)",
        ("uart",),
        {"dut": "switch-links", "link_pins": "loopback"},
        traffic_generator=True),
    DesignInfo(
        "scaleup-link",
        "scaleup-node with the switch-links dut whose link port runs over the board's "
        "connector pins to a second board running the same design (forwarded clock, elastic "
        "FIFO; docs/scaleup.md)",
        ("uart",),
        {"dut": "switch-links", "link_pins": "connector"},
        traffic_generator=True),
)}


def get_design(name):
    try:
        return DESIGNS[name]
    except KeyError:
        raise ConfigError(f"unknown design {name!r}; designs: {', '.join(DESIGNS)}") from None
