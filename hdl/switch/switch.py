"""Switch: the N-port UB-style switch (docs/switch.md has the pipeline picture).

Per clock, every input can take one flit from its link and every output can send one;
the allocator matches free inputs to free outputs every cycle, and a granted input keeps
its output until the packet's last flit (packet-granular allocation).

Data path of one packet::

    rx ─> IngressPort ─> VoqBuffer[input] ═(allocator grant)═> crossbar ─> tx
           parse, route,    queue (output, VL)       per-output VL choice
           SL->VL, drops    store-and-forward        (EgressVlScheduler)

Timing: the allocator's matching is registered (a "pending grant" per input) and the
granted input issues its first buffer read in the next cycle; the word leaves the block RAM
one cycle after its read; the crossbar is the multiplexer behind the RAM outputs (no extra
register), so ``tx`` shows the first flit two cycles after the grant. Requests are computed
for the state after the current cycle's *planned* reads (registers only, no tx.ready), and a
grant is kept only where the plan held, so one-flit packets still go out every cycle.
Back-pressure on ``tx`` holds the RAM output (and the input) until the flit is taken.
"""

from enum import IntEnum

from amaranth.hdl import Assert, Cat, Cover, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...config import SwitchConfig
from ..proto.formats import NTH16
from ..stream import packet_stream
from .allocator import make_allocator, onehot_index
from .counters import SwitchCounters, counters_signature
from .egress import EgressVlScheduler
from .ingress import ROUTE_ENTRY, IngressPort, PathSelector
from .voq import VoqBuffer

__all__ = ["Switch", "SwitchTable", "port_signature", "table_write_signature"]

#: Address / data widths of the table write port.
TABLE_ADDR_BITS = 16
TABLE_DATA_BITS = 32


class SwitchTable(IntEnum):
    """Tables and registers written through ``Switch.table`` (docs/switch.md)."""
    #: addr = DCNA, data = ROUTE_ENTRY (target, ecmp, valid)
    ROUTE = 0
    #: addr = SL, data = VL
    SL_TO_VL = 1
    #: addr = group, data = members in use (0 = empty group)
    ECMP_SIZE = 2
    #: addr = group * ecmp_max_paths + member, data = egress port
    ECMP_MEMBER = 3
    #: addr = VL, data = DWRR quantum in flits
    VL_QUANTUM = 4
    #: data = mask of VLs served by strict priority
    VL_STRICT = 5
    #: data = iSLIP iterations to run (1..islip_iterations)
    ALLOCATOR_ITERATIONS = 6


def port_signature(num_vls):
    """One switch port, as the switch sees it (flip it for the link side)."""
    return wiring.Signature({
        "rx": In(packet_stream()),
        "tx": Out(packet_stream()),
        # Credit back-pressure per VL from the attached link: a packet on VL v may start
        # only while bit v is set. (Once started, a packet is paced by tx.ready alone.)
        "tx_vl_ready": In(num_vls, init=(1 << num_vls) - 1),
        "tx_vl": Out(range(num_vls)),
    })


def table_write_signature():
    return wiring.Signature({
        "valid": Out(1),
        "table": Out(range(len(SwitchTable))),
        "addr": Out(TABLE_ADDR_BITS),
        "data": Out(TABLE_DATA_BITS),
    })


class Switch(wiring.Component):
    """The switch (see module docstring and docs/switch.md).

    Members
    -------
    ports : array of port_signature     ``ports[p].rx`` in, ``ports[p].tx`` out
    table : In(table_write_signature)   run-time writes of routes, SL->VL, ECMP, VL weights
    stats : Out(counters_signature)     statistics (SwitchCounters / counter_map)
    clear_counters : In(1)              pulse: restart every counter (SwitchCounters.clear)
    """

    def __init__(self, cfg: SwitchConfig = None, *, path_selector=PathSelector, **params):
        if cfg is None:
            cfg = SwitchConfig(**params)
        elif params:
            raise TypeError("give either cfg or keyword parameters, not both")
        self.cfg = cfg
        self._path_selector = path_selector
        super().__init__({
            "ports": Out(port_signature(cfg.num_vls)).array(cfg.ports),
            "table": In(table_write_signature()),
            "stats": Out(counters_signature(cfg.ports, cfg.num_vls, cfg.counter_bits)),
            "clear_counters": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n, nv = cfg.ports, cfg.num_vls
        fifo = cfg.queueing == "fifo"
        nq = cfg.queues_per_input

        tables = self._tables(m)

        # --- ingress and buffers -------------------------------------------------------
        m.submodules.route_table = route_mem = Memory(shape=ROUTE_ENTRY,
                                                      depth=cfg.route_entries, init=[])
        route_wr = route_mem.write_port()
        m.d.comb += [route_wr.addr.eq(self.table.addr), route_wr.data.eq(self.table.data),
                     route_wr.en.eq(self.table.valid & (self.table.table == SwitchTable.ROUTE)
                                    & (self.table.addr < cfg.route_entries))]
        ingress, voq = [], []
        for i in range(n):
            ing = IngressPort(cfg, path_selector=self._path_selector)
            buf = VoqBuffer(nq, cfg.queue_flits, num_vls=nv, tag_bits=max(1, (n - 1).bit_length()),
                            head_tags=fifo, planned_reads=True)
            m.submodules[f"ingress{i}"] = ing
            m.submodules[f"voq{i}"] = buf
            rd = route_mem.read_port(domain="sync")
            m.d.comb += [
                ing.i.valid.eq(self.ports[i].rx.valid),
                ing.i.payload.eq(self.ports[i].rx.payload),
                self.ports[i].rx.ready.eq(ing.i.ready),
                rd.addr.eq(ing.route_addr), rd.en.eq(ing.route_en),
                ing.route_entry.eq(rd.data),
                ing.sl_to_vl.eq(tables["sl_to_vl"]),
                ing.ecmp_size.eq(tables["ecmp_size"]),
                ing.ecmp_member.eq(tables["ecmp_member"]),
                buf.wr_en.eq(ing.wr_en), buf.wr_queue.eq(ing.wr_queue),
                buf.wr_word.eq(ing.wr_word), buf.wr_tag.eq(ing.wr_tag),
                buf.abort.eq(ing.abort), ing.full.eq(buf.full),
            ]
            ingress.append(ing)
            voq.append(buf)

        # --- allocation state ----------------------------------------------------------
        # The allocator decides one cycle ahead of the buffer reads: its matching goes into
        # the per-input "pending grant" registers, and the read starts from them in the next
        # cycle. So the allocator's requests describe the inputs, outputs and queues as they
        # will be *after* this cycle (an input reading the last flit of its packet now is
        # free next cycle, a queue whose last packet is being read now is empty next cycle),
        # and one matching per cycle is kept: a one-flit packet is granted while the previous
        # one is being read. The registered grant keeps the allocator's logic out of the
        # buffer's read address, which was the switch's critical path after the ingress.
        txs = [self.ports[o].tx for o in range(n)]
        d_valid = [Signal(name=f"d_valid{i}") for i in range(n)]    # RAM output holds a flit
        d_out = [Signal(range(n), name=f"d_out{i}") for i in range(n)]
        d_vl = [Signal(range(nv), name=f"d_vl{i}") for i in range(n)]
        in_busy = [Signal(name=f"in_busy{i}") for i in range(n)]    # mid-packet
        in_queue = [Signal(range(nq), name=f"in_queue{i}") for i in range(n)]
        pend = [Signal(name=f"pend{i}") for i in range(n)]          # granted, not started
        pend_out = [Signal(range(n), name=f"pend_out{i}") for i in range(n)]
        pend_vl = [Signal(range(nv), name=f"pend_vl{i}") for i in range(n)]
        pend_queue = [Signal(range(nq), name=f"pend_queue{i}") for i in range(n)]
        out_busy = [Signal(name=f"out_busy{o}") for o in range(n)]
        out_src = [Signal(range(n), name=f"out_src{o}") for o in range(n)]

        tx_ready = Cat(*(tx.ready for tx in txs))
        in_adv = [Signal(name=f"in_adv{i}") for i in range(n)]
        for i in range(n):
            m.d.comb += in_adv[i].eq(~d_valid[i] | tx_ready.bit_select(d_out[i], 1))

        # The crossbar: each output shows the RAM output of the input feeding it. Whether an
        # output holds a flit is kept in its own register (`out_valid`, the same value as
        # the multiplexed d_valid, checked below), so `out_clear` -- which gates every grant
        # start -- is one register and tx.ready, not the out_src multiplexer.
        out_valid = [Signal(name=f"out_valid{o}") for o in range(n)]
        out_clear = Signal(n)       # output o's current flit (if any) leaves this cycle
        out_valid_ok = 1
        for o in range(n):
            src = out_src[o]
            word = Signal.like(voq[0].rd_word, name=f"xbar_word{o}")
            valid = Signal(name=f"xbar_valid{o}")
            vl = Signal(range(nv), name=f"xbar_vl{o}")
            with m.Switch(src):
                for i in range(n):
                    with m.Case(i):
                        m.d.comb += [word.eq(voq[i].rd_word), vl.eq(d_vl[i])]
            # For the check only (synthesis removes it): a bit select, not a case in the
            # Switch above, so a native simulation computes it without branches.
            m.d.comb += valid.eq(Cat(*(d_valid[i] & (d_out[i] == o) for i in range(n)))
                                 .bit_select(src, 1))
            m.d.comb += [txs[o].payload.eq(word), txs[o].valid.eq(out_valid[o]),
                         self.ports[o].tx_vl.eq(vl),
                         out_clear[o].eq(~out_valid[o] | txs[o].ready)]
            out_valid_ok = out_valid_ok & (out_valid[o] == valid)
        m.d.comb += Assert(out_valid_ok, "out_valid_matches_crossbar")

        # --- starting the pending grants, reading the buffers ----------------------------
        # Every input has a *planned* read (from registers only): the next flit of its packet,
        # or the first flit of its pending grant. The actual read (`issue`) is the planned one
        # unless tx back-pressure or missing credit stops it. The allocator works on the state
        # after the planned reads (speculation), so none of tx.ready, the credit check or the
        # start logic is in front of it; its grants are kept only where the plan held.
        # The plan (whether, from which queue and for which output) is kept in registers of
        # its own, loaded at the clock edge with the value the in_busy/pend multiplexers would
        # give in the next cycle (checked below): the allocator's cone starts one level later.
        plan_r = [Signal(name=f"plan{i}") for i in range(n)]
        plan_out = [Signal(range(n), name=f"plan_out{i}") for i in range(n)]
        plan_queue = [Signal(range(nq), name=f"plan_queue{i}") for i in range(n)]
        plan_ok = 1
        issued_to = [[None] * n for _ in range(n)]   # issued_to[i][o]: input i reads for o
        planned_to = [[None] * n for _ in range(n)]  # the same for the planned read
        last_of, issue_of, plan_of, start_of, cancel_of = [], [], [], [], []
        for i in range(n):
            credit = Signal(name=f"pend_credit{i}")
            with m.Switch(pend_out[i]):
                for o in range(n):
                    with m.Case(o):
                        m.d.comb += credit.eq(self.ports[o].tx_vl_ready.bit_select(pend_vl[i], 1))
            go_on = in_busy[i] & in_adv[i]
            # A granted packet starts when the input's RAM output and the output are free and
            # the link still has credit for its VL; without credit the grant is dropped (the
            # pair is offered to the allocator again) rather than holding the output.
            start = Signal(name=f"start{i}")
            cancel = Signal(name=f"cancel{i}")
            m.d.comb += [start.eq(pend[i] & in_adv[i] & out_clear.bit_select(pend_out[i], 1)
                                  & credit),
                         cancel.eq(pend[i] & ~credit)]
            plan = plan_r[i]
            issue = Signal(name=f"issue{i}")
            out = Signal(range(n), name=f"issue_out{i}")
            vl = Signal(range(nv), name=f"issue_vl{i}")
            queue = Signal(range(nq), name=f"issue_queue{i}")
            plan_ok = plan_ok & (plan == (in_busy[i] | pend[i])) & (
                ~plan | ((plan_out[i] == Mux(in_busy[i], d_out[i], pend_out[i]))
                         & (plan_queue[i] == Mux(in_busy[i], in_queue[i], pend_queue[i]))))
            m.d.comb += [
                issue.eq(go_on | start),
                out.eq(plan_out[i]),
                vl.eq(Mux(in_busy[i], d_vl[i], pend_vl[i])),
                queue.eq(plan_queue[i]),
                voq[i].rd_en.eq(issue),
                voq[i].rd_plan.eq(plan),
                voq[i].rd_queue.eq(queue),
            ]
            last = voq[i].rd_last
            # The read's registers load whenever the RAM output is free (`in_adv`, which every
            # read needs: a read without it would be lost), read or not, as the ingress
            # stages do: an enable without the read decision in it, which a native
            # simulation predicts (docs/switch.md, "Simulation speed", session 11). Without
            # a read they take values nobody looks at: d_out and d_vl while d_valid is low,
            # in_queue while in_busy is low (an input without a read is not busy: a busy one
            # reads whenever in_adv).
            with m.If(in_adv[i]):
                m.d.sync += [d_valid[i].eq(issue), d_out[i].eq(out), d_vl[i].eq(vl),
                             in_busy[i].eq(issue & ~last), in_queue[i].eq(queue)]
            for o in range(n):
                issued_to[i][o] = issue & (out == o)
                planned_to[i][o] = plan & (out == o)
            last_of.append(last)
            issue_of.append(issue)
            plan_of.append(plan)
            start_of.append(start)
            cancel_of.append(cancel)

        m.d.comb += Assert(plan_ok, "plan_registers_match")

        # A grant goes only to an input without one (or whose one ends now), and only to an
        # idle input: a pending grant never coexists with a packet being read.
        idle_ok = 1
        for i in range(n):
            idle_ok = idle_ok & (~pend[i] | ~in_busy[i])
        m.d.comb += Assert(idle_ok, "pending_grant_only_on_idle_input")

        # Free after the planned reads: the inputs and outputs the allocator may match now.
        # (The planned read of an input ends its packet iff `last`; a pending grant is
        # planned to start, so it holds nothing beyond its own packet.)
        in_free = Signal(n)
        out_free = Signal(n)
        for i in range(n):
            m.d.comb += in_free[i].eq(Mux(plan_of[i], last_of[i], 1))
        for o in range(n):
            hits = Cat(*(planned_to[i][o] for i in range(n)))
            ends = Cat(*(planned_to[i][o] & last_of[i] for i in range(n)))
            m.d.comb += out_free[o].eq(Mux(hits.any(), ends.any(), ~out_busy[o]))
            issued = Cat(*(issued_to[i][o] for i in range(n)))
            issued_end = Cat(*(issued_to[i][o] & last_of[i] for i in range(n)))
            with m.If(issued.any()):
                m.d.sync += out_busy[o].eq(~issued_end.any())
            # The crossbar select loads whenever the output is clear, read or not: a read for
            # output o needs it clear (a continuing packet's input advances only on o's
            # tx.ready; a start needs out_clear), and without a read the select names an
            # input whose RAM output holds nothing for o, as out_valid says (checked above).
            # No read decision in the enable, for the hardware and for a native simulation.
            with m.If(out_clear[o]):
                m.d.sync += out_src[o].eq(onehot_index(issued, n))
            m.d.sync += out_valid[o].eq(issued.any() | (out_valid[o] & ~txs[o].ready))
        # Where the plan held: an input whose planned read happened (or that planned none),
        # and an output all of whose planned reads happened. Only there is the state after
        # this cycle the one the allocator assumed (a failed plan leaves the input or output
        # busy or pending, or, for a cancelled grant, its queue's head unread).
        in_ok = [Signal(name=f"plan_held_in{i}") for i in range(n)]
        out_ok = [Signal(name=f"plan_held_out{o}") for o in range(n)]
        for i in range(n):
            m.d.comb += in_ok[i].eq(issue_of[i] | ~plan_of[i])
        for o in range(n):
            held = 1
            for i in range(n):
                held = held & (~planned_to[i][o] | in_ok[i])
            m.d.comb += out_ok[o].eq(held)

        # Complete packets per (input, output, VL) at the head of a queue after this cycle.
        def avail(i, o, v):
            if fifo:
                return voq[i].ready_next[v] & (voq[i].head_tag_next[v] == o)
            return voq[i].ready_next[o * nv + v]

        # --- egress VL choice ----------------------------------------------------------
        # The scheduler chooses from the eligibility of the previous cycle (registered: the
        # eligibility hangs behind the whole "free after this cycle" logic, and the DWRR
        # choice behind it was the critical path). The requests below re-check the chosen
        # VL against the current state, so a stale choice can cost an output a slot when
        # several VLs compete, but never grants a VL without a packet or credit. With one VL
        # the choice is fixed and nothing is lost.
        sched = []
        for o in range(n):
            s = EgressVlScheduler(nv, cfg.dwrr_quantum.bit_length() + 4, cfg.max_packet_flits)
            m.submodules[f"egress{o}"] = s
            eligible = Signal(nv, name=f"eligible_next{o}")
            for v in range(nv):
                wanted = 0
                for i in range(n):
                    wanted = wanted | (in_free[i] & avail(i, o, v))
                m.d.comb += eligible[v].eq(self.ports[o].tx_vl_ready[v] & wanted)
            m.d.sync += s.eligible.eq(eligible)
            m.d.comb += [s.strict.eq(tables["vl_strict"]), s.quantum.eq(tables["vl_quantum"]),
                         s.sent.eq(txs[o].valid & txs[o].ready),
                         s.sent_vl.eq(self.ports[o].tx_vl)]
            sched.append(s)

        # --- allocation ------------------------------------------------------------------
        m.submodules.allocator = alloc = make_allocator(n, cfg)
        if hasattr(alloc, "active_iterations"):
            m.d.comb += alloc.active_iterations.eq(tables["iterations"])
        for i in range(n):
            row = []
            for o in range(n):
                vl_avail = Signal(name=f"avail_i{i}_o{o}")
                with m.Switch(sched[o].vl):
                    for v in range(nv):
                        with m.Case(v):
                            m.d.comb += vl_avail.eq(avail(i, o, v))
                credit = self.ports[o].tx_vl_ready.bit_select(sched[o].vl, 1)
                row.append(in_free[i] & out_free[o] & credit & vl_avail)
            m.d.comb += alloc.request[i].eq(Cat(*row))

        # The grants that stand: the allocator's, where the plan held.
        kept = [Signal(n, name=f"grant_kept{i}") for i in range(n)]
        for i in range(n):
            m.d.comb += kept[i].eq(alloc.grant[i] & Cat(*(in_ok[i] & out_ok[o]
                                                          for o in range(n))))
        for i in range(n):
            grant = alloc.grant[i]
            g_out = onehot_index(grant, n)
            g_vl = Signal(range(nv), name=f"grant_vl{i}")
            with m.Switch(g_out):
                for o in range(n):
                    with m.Case(o):
                        m.d.comb += g_vl.eq(sched[o].vl)
            g_queue = g_vl if fifo else g_out * nv + g_vl
            # The pending grant's registers load whenever the input has no grant waiting or
            # its one leaves now: a grant is kept only then (with a grant waiting, the input's
            # plan is that grant, and a plan that does not start now fails, so in_ok drops
            # the new grant). So the enable is not the allocation's outcome, the end of the
            # longest cone, and a native simulation does not branch on it.
            pend_free = ~pend[i] | start_of[i] | cancel_of[i]
            with m.If(pend_free):
                m.d.sync += [pend[i].eq(kept[i].any()), pend_out[i].eq(g_out),
                             pend_vl[i].eq(g_vl), pend_queue[i].eq(g_queue)]
            # Next cycle's plan: a kept grant (its input is idle then), else the packet being
            # read goes on (in_busy) or the pending grant waits; either way the same output and
            # queue as this cycle's read.
            busy_next = Mux(issue_of[i], ~last_of[i], in_busy[i])
            pend_next = kept[i].any() | (pend[i] & ~start_of[i] & ~cancel_of[i])
            m.d.sync += [plan_r[i].eq(busy_next | pend_next),
                         plan_out[i].eq(Mux(kept[i].any(), g_out, plan_out[i])),
                         plan_queue[i].eq(Mux(kept[i].any(), g_queue, plan_queue[i]))]
        for o in range(n):
            granted_here = Cat(*(kept[i][o] for i in range(n))).any()
            m.d.comb += sched[o].start.eq(granted_here)

        # --- statistics ------------------------------------------------------------------
        occ_bits = len(voq[0].occupancy[0])
        m.submodules.counters = counters = SwitchCounters(n, nv, cfg.counter_bits, occ_bits)
        for p in range(n):
            tx = txs[p]
            sent = tx.valid & tx.ready
            # A word leaving is registered before its bytes are summed: `nbytes` comes
            # straight out of the buffer's block RAM (slow clock-to-out) through the
            # crossbar, and would otherwise feed the packet's byte adder in the same cycle.
            # The sum is registered again on its way to the counters (which add it to
            # 32-bit counters), so transmit events reach them two cycles after the word.
            w_sent = Signal(name=f"tx_sent{p}")
            w_last = Signal(name=f"tx_last{p}")
            w_nbytes = Signal.like(tx.payload.nbytes, name=f"tx_nbytes{p}")
            w_vl = Signal.like(self.ports[p].tx_vl, name=f"tx_vl{p}")
            m.d.sync += [w_sent.eq(sent), w_last.eq(tx.payload.last),
                         w_nbytes.eq(tx.payload.nbytes), w_vl.eq(self.ports[p].tx_vl)]
            bytes_so_far = Signal(16, name=f"tx_bytes{p}")
            # (No enable, as the counters': a packet's last word restarts the sum.)
            m.d.sync += bytes_so_far.eq(Mux(w_sent & w_last, 0,
                                            bytes_so_far + Mux(w_sent, w_nbytes, 0)))
            m.d.comb += counters.occupancy[p].eq(voq[p].occupancy)
            m.d.sync += [
                counters.rx[p].eq(ingress[p].commit),
                counters.rx_vl[p].eq(ingress[p].commit_vl),
                counters.rx_bytes[p].eq(ingress[p].commit_bytes),
                counters.tx[p].eq(w_sent & w_last),
                counters.tx_vl[p].eq(w_vl),
                counters.tx_bytes[p].eq(bytes_so_far + w_nbytes),
                counters.drop[p].eq(ingress[p].drop),
                counters.grant[p].eq(start_of[p]),
            ]
        m.d.comb += [getattr(self.stats, name).eq(getattr(counters.stats, name))
                     for name in self.stats.signature.members]
        m.d.comb += counters.clear.eq(self.clear_counters)
        all_sending = 1
        for tx in txs:
            all_sending = all_sending & tx.valid & tx.ready
        m.d.comb += Cover(all_sending, "cover_all_ports_transmitting")
        return m

    def _tables(self, m):
        """Run-time tables held in registers, written through ``self.table``."""
        cfg = self.cfg
        nv = cfg.num_vls
        sl_count = 1 << NTH16.field("sl").width
        port_bits = ROUTE_ENTRY.size - 2
        sl_to_vl = Signal(data.ArrayLayout(range(nv), sl_count),
                          init=[sl % nv for sl in range(sl_count)])
        ecmp_size = Signal(data.ArrayLayout(range(cfg.ecmp_max_paths + 1), cfg.ecmp_groups))
        ecmp_member = Signal(data.ArrayLayout(
            data.ArrayLayout(unsigned(port_bits), cfg.ecmp_max_paths), cfg.ecmp_groups))
        quantum_bits = cfg.dwrr_quantum.bit_length() + 4
        vl_quantum = Signal(data.ArrayLayout(unsigned(quantum_bits), nv),
                            init=[cfg.dwrr_quantum] * nv)
        vl_strict = Signal(nv)
        iterations = Signal(range(1, cfg.islip_iterations + 1), init=cfg.islip_iterations)

        t = self.table
        with m.If(t.valid):
            with m.Switch(t.table):
                with m.Case(SwitchTable.SL_TO_VL):
                    for sl in range(sl_count):
                        with m.If(t.addr == sl):
                            m.d.sync += sl_to_vl[sl].eq(t.data)
                with m.Case(SwitchTable.ECMP_SIZE):
                    for g in range(cfg.ecmp_groups):
                        with m.If(t.addr == g):
                            m.d.sync += ecmp_size[g].eq(t.data)
                with m.Case(SwitchTable.ECMP_MEMBER):
                    for g in range(cfg.ecmp_groups):
                        for k in range(cfg.ecmp_max_paths):
                            with m.If(t.addr == g * cfg.ecmp_max_paths + k):
                                m.d.sync += ecmp_member[g][k].eq(t.data)
                with m.Case(SwitchTable.VL_QUANTUM):
                    for v in range(nv):
                        with m.If(t.addr == v):
                            m.d.sync += vl_quantum[v].eq(t.data)
                with m.Case(SwitchTable.VL_STRICT):
                    m.d.sync += vl_strict.eq(t.data)
                with m.Case(SwitchTable.ALLOCATOR_ITERATIONS):
                    with m.If((t.data >= 1) & (t.data <= cfg.islip_iterations)):
                        m.d.sync += iterations.eq(t.data)
        return {"sl_to_vl": sl_to_vl, "ecmp_size": ecmp_size, "ecmp_member": ecmp_member,
                "vl_quantum": vl_quantum, "vl_strict": vl_strict, "iterations": iterations}
