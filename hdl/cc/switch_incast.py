"""N -> 1 incast through the real N-port switch (``hdl/switch``), closed loop, all in RTL.

:class:`SwitchIncast` composes existing parts around an unmodified
:class:`~ubproto.hdl.switch.switch.Switch` of ``sources + 1`` ports::

    port k+1 (k = 0..N-1): BacklogSource -> RateControlledSource (DCQCN) -> rx
                           tx (CNPs for this source) -> RateControlledSource.cnp_in
    port 0:                tx -> EgressCongestion (FECN marker per VL + phantom queue)
                              -> CnpSink (the receiver) ; CnpSink.cnp -> rx

Endpoint addresses are port numbers: the receiver is CNA 0, source k is CNA k + 1. After
reset a small table writer replays the switch's run-time table writes through
``Switch.table`` (route DCNA p -> port p, data SL -> data VL, CNP SL -> ``cnp_vl``) and the
sources start once it is done, so the CNPs travel back through the switch's own routing:
the loop is a real fabric loop.

**What the marker sees.** The switch keeps one lossless queue per (input, output, VL) and
counts words per (input, VL) (``stats.occupancy``). Sources only send to the receiver, so
every word that input k+1 holds is queued for output 0: the occupancy of (output 0, VL v)
in bytes is exactly ``WORD_BYTES x sum over source inputs of stats.occupancy[input][v]``
(input 0 holds only CNPs, which go to the other outputs and are excluded). Words already
read from a queue but not yet through the marker chain (the switch's RAM output register,
the markers' output registers) are not counted: at most ``1 + num_vls`` words. A switch
that exports per-(output, VL) occupancy would let the same top work with any traffic
matrix.

Lossless: a full queue lowers ``rx.ready``, which stalls the rate limiter; the switch's drop
counters (``stats.drops``, every input and reason) are summed into ``drops``.

The marking mode is the run-time ``control`` CSR (off, RED on the real queue, phantom), as
in :class:`~.incast.IncastBottleneck`, whose output members this top shares so one
testbench (``tests/cc_tb/incast_tb.py``) and one summary (:func:`.incast.summarise`) serve
both fabrics.
"""

import dataclasses

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ...config import SwitchConfig
from ...errors import ConfigError
from ..proto.formats import LPH_BYTES, NTH16
from ..proto.layouts import header_view
from ..stream import WORD_BYTES
from ..switch.ingress import SWITCH_DROP_REASONS
from ..switch.packets import route_write, sl_to_vl_write
from ..switch.switch import TABLE_ADDR_BITS, TABLE_DATA_BITS, Switch, SwitchTable
from .cnp import CnpSink
from .egress import EgressCongestion
from .incast import _SUM_BITS, BacklogSource, loop_members
from .marker import COUNTER_BITS
from .rate import Dcqcn, DcqcnParams, RateControlledSource
from .red import RedRule

__all__ = ["SwitchIncast", "RECEIVER_PORT", "DATA_SL", "incast_switch_config", "table_writes"]

#: The receiver's switch port (and CNA); source k sits on port k + 1 with CNA k + 1.
RECEIVER_PORT = 0
#: Service level of the data packets (BacklogSource leaves NTH16.SL at 0).
DATA_SL = 0


def incast_switch_config(base: SwitchConfig, sources: int, queue_words: int) -> SwitchConfig:
    """The switch of an N -> 1 incast: ``base`` with ``sources + 1`` ports and
    ``queue_words``-deep VOQs (each source has its own (input, output 0, VL) queue)."""
    try:
        return dataclasses.replace(base, ports=sources + 1, queue_flits=queue_words)
    except ConfigError as exc:
        raise ConfigError(f"incast on the switch with {sources} sources and queue_words "
                          f"{queue_words}: {exc}") from None


def table_writes(sources, *, data_vl, cnp_sl, cnp_vl):
    """The ``Switch.table`` writes that make the incast fabric: (table, addr, data)."""
    writes = [route_write(port, port) for port in range(sources + 1)]
    writes.append(sl_to_vl_write(DATA_SL, data_vl))
    if cnp_sl != DATA_SL:
        writes.append(sl_to_vl_write(cnp_sl, cnp_vl))
    return writes


class SwitchIncast(wiring.Component):
    """``sources`` DCQCN senders -> the switch -> a marked port 0 -> a CNP sink, and the
    CNPs back through the switch (see the module docstring).

    Parameters
    ----------
    switch : SwitchConfig      the switch; ``ports`` must be ``sources + 1``
    sources, packet_words      incast width and data packet size in words
    params : DcqcnParams       reaction point
    cnp_interval_cycles, cnp_vl   notification point; CNPs use SL = VL = ``cnp_vl``
    gamma, seed                phantom drain and LFSR seed of the port-0 egress
    rule, reaction             the marking rule (default RedRule) and the sources' reaction
                               algorithm (default Dcqcn): the two swappable parts

    Ports (as :class:`~.incast.IncastBottleneck`, plus)
    -----
    drops : Out(32)             sum of every switch drop counter
    programmed : Out(1)         the table writes are done (sources may run)
    cnps_misrouted : Out(32)    CNPs that left a source port not addressed to its source
    cnps_received_<k> : Out(32) CNPs source k took in
    """

    DATA_VL = 0

    def __init__(self, switch: SwitchConfig, *, sources, packet_words=8,
                 params: DcqcnParams = DcqcnParams(), cnp_interval_cycles=5000, cnp_vl=1,
                 gamma=1 / 1.05, seed=1, rule=RedRule, reaction=Dcqcn):
        if switch.ports != sources + 1:
            raise ConfigError(f"SwitchIncast: {sources} sources need a {sources + 1}-port "
                              f"switch, got ports={switch.ports}")
        if not 0 <= cnp_vl < switch.num_vls:
            raise ConfigError(f"congestion.cnp_vl must be below switch.num_vls "
                              f"({switch.num_vls}), got {cnp_vl}")
        if packet_words > switch.max_packet_flits:
            raise ConfigError(f"incast packet_words ({packet_words}) exceeds "
                              f"switch.max_packet_flits ({switch.max_packet_flits})")
        self.switch_cfg = switch
        self.sources = sources
        self.packet_words = packet_words
        self.params = params
        self.cnp_vl = cnp_vl
        self.cnp_sl = cnp_vl
        self.writes = table_writes(sources, data_vl=self.DATA_VL, cnp_sl=self.cnp_sl,
                                   cnp_vl=cnp_vl)
        nv = switch.num_vls
        # A VL's bytes over all source inputs (each input holds up to ports x queue words
        # per VL).
        self.occupancy_bits = bits_for(sources * switch.ports * switch.queue_flits * WORD_BYTES)
        self.reaction = reaction
        self.egress = EgressCongestion(nv, self.occupancy_bits, gamma=gamma, seed=seed, rule=rule)
        self.sink = CnpSink(interval_cycles=cnp_interval_cycles,
                            sources=1 << bits_for(sources), cnp_vl=cnp_vl, cnp_sl=self.cnp_sl)
        members = loop_members(self.egress, self.occupancy_bits, sources, params)
        members.update({
            "drops": Out(COUNTER_BITS),
            "programmed": Out(1),
            "cnps_misrouted": Out(COUNTER_BITS),
        })
        for k in range(sources):
            members[f"cnps_received_{k}"] = Out(COUNTER_BITS)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n, nv = self.sources, self.switch_cfg.num_vls
        m.submodules.switch = switch = Switch(self.switch_cfg)
        m.submodules.egress = egress = self.egress
        m.submodules.sink = sink = self.sink
        self._program_tables(m, switch)

        # -- sources on ports 1..N ------------------------------------------------------
        reaction_points = []
        for k in range(n):
            port = k + 1
            source = BacklogSource(port, RECEIVER_PORT, self.packet_words)
            rp = RateControlledSource(self.params, reaction=self.reaction)
            m.submodules[f"backlog_{k}"] = source
            m.submodules[f"source_{k}"] = rp
            m.d.comb += source.enable.eq(self.run & self.programmed)
            wiring.connect(m, source.o, rp.data_in)
            wiring.connect(m, rp.data_out, switch.ports[port].rx)
            wiring.connect(m, switch.ports[port].tx, rp.cnp_in)
            reaction_points.append(rp)
            m.d.comb += [getattr(self, f"rate_{k}").eq(rp.rate),
                         getattr(self, f"sent_bytes_{k}").eq(rp.bytes_sent),
                         getattr(self, f"cnps_received_{k}").eq(rp.cnps_received)]
            # Every CNP leaving this port must be addressed to this port's source.
            tx = switch.ports[port].tx
            dcna = header_view(tx.payload.data, NTH16, LPH_BYTES).dcna
            with m.If(tx.valid & tx.ready & tx.payload.first & (dcna != port)):
                m.d.sync += self.cnps_misrouted.eq(self.cnps_misrouted + 1)

        # -- the receiver on port 0, behind the port's congestion signalling --------------
        wiring.connect(m, switch.ports[RECEIVER_PORT].tx, egress.i)
        wiring.connect(m, egress.o, sink.i)
        wiring.connect(m, sink.cnp, switch.ports[RECEIVER_PORT].rx)

        # Occupancy of (output 0, VL v): see the module docstring for why this is exact.
        occupancy = [Signal(self.occupancy_bits, name=f"port0_vl{v}_bytes") for v in range(nv)]
        for v in range(nv):
            words = sum(switch.stats.occupancy[k + 1][v] for k in range(n))
            m.d.comb += [
                occupancy[v].eq(words * WORD_BYTES),
                egress.occupancy[v].eq(occupancy[v]),
                # The same CSRs on every VL: only the data VL carries packets to port 0.
                egress.real_params[v].eq(self.real_params),
                egress.phantom_params[v].eq(self.phantom_params),
                egress.control[v].eq(self.control),
            ]
        queue = occupancy[self.DATA_VL]
        m.d.comb += [
            self.queue_bytes.eq(queue),
            self.phantom_bytes.eq(egress.phantom_occupancy),
            self.delivered_bytes.eq(sink.bytes),
            self.marked.eq(sum(egress.marked[v] for v in range(nv))),
            self.cnps_sent.eq(sink.cnps_sent),
            self.cnps_received.eq(sum(rp.cnps_received for rp in reaction_points)),
            self.drops.eq(sum(switch.stats.drops[p][r] for p in range(n + 1)
                              for r in range(len(SWITCH_DROP_REASONS)))),
        ]
        m.d.sync += [self.cycles.eq(self.cycles + 1),
                     self.queue_bytes_sum.eq(self.queue_bytes_sum + queue)]
        with m.If(queue > self.max_queue_bytes):
            m.d.sync += self.max_queue_bytes.eq(queue)
        return m

    def _program_tables(self, m, switch):
        """Replay :func:`table_writes` through ``switch.table`` after reset, one per clock."""
        count = len(self.writes)
        rom = Array(Const((int(t) << (TABLE_ADDR_BITS + TABLE_DATA_BITS)) |
                          (addr << TABLE_DATA_BITS) | value,
                          bits_for(len(SwitchTable) - 1) + TABLE_ADDR_BITS + TABLE_DATA_BITS)
                    for t, addr, value in self.writes)
        index = Signal(range(count + 1))
        entry = Signal.like(rom[0])
        m.d.comb += [
            entry.eq(rom[index]),
            self.programmed.eq(index == count),
            switch.table.valid.eq(index != count),
            switch.table.data.eq(entry[:TABLE_DATA_BITS]),
            switch.table.addr.eq(entry[TABLE_DATA_BITS:TABLE_DATA_BITS + TABLE_ADDR_BITS]),
            switch.table.table.eq(entry[TABLE_DATA_BITS + TABLE_ADDR_BITS:]),
        ]
        with m.If(index != count):
            m.d.sync += index.eq(index + 1)
