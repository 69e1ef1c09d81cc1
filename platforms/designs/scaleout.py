"""``scaleout-switch``: the design under test behind the Ethernet MAC.

Data plane: UB over UDP port 4792 (``hdl/proto/formats.UBOE_UDP_PORT``) -- each datagram's
payload (UBoE shim + transport header + data) is one packet into the design under test,
and each packet out of it goes back in a datagram to the last sender. Control: the CSR
bridge on UDP ``hil.udp_port`` and raw EtherType 0x88B5, with an ARP responder so host
tools need no privileges. All of it is :class:`~ubproto.hdl.host.eth.transport.EthernetTransport`;
this component wires it to the host bridge core and the design under test.

The design under test is the ``dut`` slot of :mod:`ubproto.platforms.designs` (default:
the switch of ``hdl/switch`` with a host port and reflector ports,
:mod:`ubproto.platforms.designs.switch`; ``dut="lanes"`` for the stand-in loopback).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...config import HilConfig
from ...hdl.host.core import HilCore
from ...hdl.host.eth.mac import gmii_rx_signature, gmii_tx_signature
from ...hdl.host.eth.transport import EthernetTransport

__all__ = ["ScaleoutSwitch"]


class ScaleoutSwitch(wiring.Component):
    """Core + design under test + Ethernet transport, with GMII ports in ``mac_domain``.

    ``busy``: the bridge or the Ethernet transport has work in flight (simulation harnesses
    wait for it to fall); ``exec_cycles``: the bridge's ``exec_cycles`` register."""

    def __init__(self, hil=None, *, dut="switch", clock_hz=0, mac_domain="sync",
                 name="scaleout-switch"):
        from . import _dut_entry, csr_components
        self.hil = hil or HilConfig()
        self.dut = _dut_entry(dut).build(self.hil)
        self.eth = EthernetTransport(mac_address=self.hil.mac_address,
                                     ip_address=self.hil.ip_address,
                                     bridge_port=self.hil.udp_port, mac_domain=mac_domain)
        components = csr_components(self.dut) + [self.eth]
        self.core = HilCore(components, clock_hz=clock_hz, max_request=self.hil.max_request,
                            max_response=self.hil.max_response, name=name)
        self.regmap = self.core.regmap
        super().__init__({"gmii_rx": In(gmii_rx_signature()), "gmii_tx": Out(gmii_tx_signature()),
                          "busy": Out(1), "exec_cycles": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.dut = dut = self.dut
        m.submodules.eth = eth = self.eth
        wiring.connect(m, wiring.flipped(self.gmii_rx), eth.gmii_rx)
        wiring.connect(m, eth.gmii_tx, wiring.flipped(self.gmii_tx))
        wiring.connect(m, eth.bridge_rx, core.rx)
        wiring.connect(m, core.tx, eth.bridge_tx)
        m.d.comb += [eth.bridge_tx_length.eq(core.tx_length), eth.bridge_busy.eq(core.busy),
                     self.busy.eq(core.busy | eth.busy), self.exec_cycles.eq(core.exec_cycles)]
        wiring.connect(m, eth.pkt_rx, dut.rx)
        wiring.connect(m, dut.tx, eth.pkt_tx)
        return m
