"""LinkPair: two link endpoints joined by a :class:`~ubproto.hdl.fault.FaultInjector`.

The system under test of the link tests, benchmarks and experiments: endpoint A's user
ports (``a_tx``, ``a_rx``) and endpoint B's (``b_tx``, ``b_rx``) are exposed, the channel
between them is the fault injector (its controls and counters are exposed with an ``f_``
prefix), and every counter of both endpoints is exposed with an ``a_`` / ``b_`` prefix.
Each endpoint can have its own configuration (negotiation tests).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fault.injector import FaultInjector
from ..stream import packet_stream
from .endpoint import COUNTERS, LinkEndpoint

__all__ = ["LinkPair", "FAULT_INPUTS"]

#: Fault-injector controls exposed as ``f_<name>`` inputs.
FAULT_INPUTS = ("delay", "error_threshold", "burst_threshold", "burst_len", "drop_threshold",
                "down_cmd", "down_at", "down_for", "down_every", "seed", "inject_on_null")
FAULT_COUNTERS = ("cycles", "link_downs", *(f"{d}_{c}" for d in ("ab", "ba")
                                            for c in ("flits", "corrupted", "bursts",
                                                      "dropped", "injected")))


class LinkPair(wiring.Component):
    def __init__(self, params_a, params_b=None, *, max_delay=64, mutant=None):
        self.a = LinkEndpoint(params=params_a, mutant=mutant)
        # A mutant goes into both ends (a broken receiver must be fed by a working sender
        # and vice versa; both directions carry traffic).
        self.b = LinkEndpoint(params=params_b or params_a, mutant=mutant)
        self.injector = FaultInjector(max_delay)
        sig = {}
        for side, ep in (("a", self.a), ("b", self.b)):
            sig[f"{side}_tx"] = In(packet_stream()).array(ep.params.num_vls)
            sig[f"{side}_rx"] = Out(packet_stream()).array(ep.params.num_vls)
            sig[f"{side}_enable"] = In(1, init=1)
            for name, member in ep.signature.members.items():
                if name in COUNTERS or name in ("state", "retry_state", "in_sync",
                                                "replay_used", "send_seq", "rcv_seq",
                                                "neg_vl_mask"):
                    sig[f"{side}_{name}"] = member
            sig[f"{side}_credits"] = ep.signature.members["credits"]
            sig[f"{side}_rx_buffer_used"] = ep.signature.members["rx_buffer_used"]
        for name in FAULT_INPUTS:
            sig[f"f_{name}"] = self.injector.signature.members[name]
        for name in FAULT_COUNTERS:
            sig[f"f_{name}"] = self.injector.signature.members[name]
        sig["f_inject"] = self.injector.signature.members["inject"]
        sig["link_up"] = Out(1)
        sig["wire_ab"] = Out(self.injector.signature.members["a_in"].signature.flip())
        sig["wire_ba"] = Out(self.injector.signature.members["b_in"].signature.flip())
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        m.submodules.a = a = self.a
        m.submodules.b = b = self.b
        m.submodules.injector = inj = self.injector
        wiring.connect(m, a.phy_tx, inj.a_in)
        wiring.connect(m, inj.b_out, b.phy_rx)
        wiring.connect(m, b.phy_tx, inj.b_in)
        wiring.connect(m, inj.a_out, a.phy_rx)
        m.d.comb += [a.phy_up.eq(inj.link_up), b.phy_up.eq(inj.link_up),
                     self.link_up.eq(inj.link_up),
                     self.wire_ab.data.eq(a.phy_tx.data), self.wire_ab.valid.eq(a.phy_tx.valid),
                     self.wire_ba.data.eq(b.phy_tx.data), self.wire_ba.valid.eq(b.phy_tx.valid)]
        for side, ep in (("a", a), ("b", b)):
            for v in range(ep.params.num_vls):
                wiring.connect(m, wiring.flipped(getattr(self, f"{side}_tx")[v]), ep.tx[v])
                wiring.connect(m, ep.rx[v], wiring.flipped(getattr(self, f"{side}_rx")[v]))
                m.d.comb += [getattr(self, f"{side}_credits")[v].eq(ep.credits[v]),
                             getattr(self, f"{side}_rx_buffer_used")[v].eq(
                                 ep.rx_buffer_used[v])]
            m.d.comb += ep.enable.eq(getattr(self, f"{side}_enable"))
            for name in ep.signature.members:
                port = f"{side}_{name}"
                if name in ("tx", "rx", "phy_tx", "phy_rx", "phy_up", "enable", "credits",
                            "rx_buffer_used"):
                    continue
                m.d.comb += getattr(self, port).eq(getattr(ep, name))
        for name in FAULT_INPUTS:
            m.d.comb += getattr(inj, name).eq(getattr(self, f"f_{name}"))
        for name in FAULT_COUNTERS:
            m.d.comb += getattr(self, f"f_{name}").eq(getattr(inj, name))
        wiring.connect(m, wiring.flipped(self.f_inject), inj.inject)
        return m
