"""Ingress of one switch port: parse, route, map SL to VL, drop what cannot be forwarded.

Switch port format (docs/switch.md): a packet on a switch port is the link layer's
de-blocked view, LPH (4 bytes) then the network header, then the payload, on a packet
stream (:mod:`ubproto.hdl.stream`); LBHs and BCRCs stay inside the link.

Pipeline (one flit per clock, three register stages and a skid slot before the write):

* ``i.ready`` depends on registers only ("one of the four word registers is free"), so the
  link's valid never waits on a decision made downstream;
* stage P: the word is parsed -- LPH.CFG, the NTH16 fields, the route-table address (DCNA),
  the VL (SL -> VL table) and the path entropy (:class:`PathSelector`) -- and the route
  table (a block RAM shared by the ports, one read port each) is read;
* stage Q: the entry out of the RAM is registered with nothing in front of it but two
  range checks (ORs of high bits for power-of-two bounds) -- the block RAM's clock-to-out
  is slow; its ECMP group (size and member ports) is read from the table registers in
  stage Q, selected by the registered entry (timing step 13: the group multiplexer behind
  the RAM output was the worst path). Beside the entry, the route checks that need no RAM
  output are ready-made: the member index for every possible group size (registered, from
  stage P's entropy) and, per member of every group, whether the port exists (from the
  table registers), so resolving the route in stage Q is multiplexers only (the entropy x
  group size multiplier and the port-range compare behind it were the critical path after
  timing step 8);
* stage R: the route is resolved (direct port or ECMP group member) and the drop reason
  decided, both *registered* (this was one cycle together with the RAM read and the buffer
  write: RAM output -> ECMP multiplexer -> drop decision -> queue-full lookup -> ready was
  the switch's critical path);
* skid slot: stage R hands its word on whenever the slot is empty, so stage R's "ready" is
  a register and no stage's load enable depends on the write's decision (queue full, drop,
  abort); a word the write does not finish waits in the slot. It adds no latency (the write
  takes stage R's word directly while the slot is empty);
* write: the packet's fate is applied on its first word and every word is written to the
  input's :class:`~.voq.VoqBuffer` queue of (output, VL) -- or of VL alone in FIFO
  queueing -- with LPH.VL rewritten to the egress VL (the VL is hop-local).

Each stage's registers load whenever the stage is free, whether or not a word moves in;
only its valid flag follows the words (a free stage's data is never looked at). The load
enables are then "stage free" -- registers only -- rather than transfers (docs/switch.md,
"Simulation speed", session 11).

The slot replaced a skid buffer in front of stage P (timing step 8, docs/switch.md,
"Resources and Fmax"): with it, the write's decision rippled back through stages R, Q and P
to the load enable of every stage register. The ingress still holds at most four words and
takes a word exactly when the old one did (the old spare slot was full exactly when stages
P, Q and R and the spare held four words, which is when ``i.ready`` is low now), so the
switch behaves cycle for cycle as before.

Drops (:data:`SWITCH_DROP_REASONS`) are decided on the first word except ``oversize``, which
shows when a packet passes ``max_packet_flits``: its words already in the buffer are taken
back (``abort``), the rest are discarded. A full queue back-pressures the input (the switch
is lossless, like the credit-controlled links it connects).
"""

from amaranth.hdl import Array, Assert, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..proto.formats import DATA_CFGS, LPH, LPH_BYTES, NTH16, Cfg
from ..proto.layouts import header_view
from ..stream import WORD_BYTES, PacketWord, packet_stream

__all__ = ["SWITCH_DROP_REASONS", "ROUTE_ENTRY", "ENTROPY_BITS", "PathSelector", "IngressPort",
           "HEADER_BYTES"]

#: Every reason the switch ingress drops a packet (counter names; docs/switch.md).
SWITCH_DROP_REASONS = {
    "malformed": "too short for LPH + NTH16, CFG 0 (a link control block), or broken "
                 "framing (a packet without `first`, or cut short by the next `first`)",
    "reserved_cfg": "LPH.CFG is a reserved value",
    "unsupported_cfg": "a valid data CFG this switch does not route (only CFG 6, compact "
                       "16-bit addressing, is routed)",
    "unknown_destination": "DCNA outside the table, an invalid entry, an empty ECMP group, "
                           "or a port the switch does not have",
    "oversize": "longer than max_packet_flits",
}

#: Bytes the ingress needs in the first word: LPH + NTH16.
HEADER_BYTES = LPH_BYTES + NTH16.nbytes

#: Route table entry: ``target`` is an egress port, or an ECMP group when ``ecmp``.
ROUTE_ENTRY = data.StructLayout({"target": unsigned(8), "ecmp": unsigned(1),
                                 "valid": unsigned(1)})

#: Bits of path entropy fed to the ECMP member choice.
ENTROPY_BITS = 8


def _fold(value, width):
    """XOR-fold ``value`` down to ``width`` bits."""
    out = Const(0, width)
    for lsb in range(0, len(value), width):
        out = out ^ value[lsb:lsb + width]
    return out


def _at_least(value, bound):
    """``value >= bound`` for a constant ``bound``; a power of two is an OR of the high bits
    (LUTs) rather than a compare (a carry chain), which matters right after a block RAM."""
    if bound & (bound - 1) == 0:
        low = bound.bit_length() - 1
        return value[low:].any() if len(value) > low else Const(0, 1)
    return value >= bound


class PathSelector(wiring.Component):
    """Load-balancing hook: the entropy that picks an ECMP group member.

    LPH.RT bit 1 selects per-packet balancing (the entropy is the input's packet sequence,
    so consecutive packets of a flow spread over the group); otherwise balancing is per flow
    (a hash of SCNA, DCNA and LBF, so a flow stays on one path and in order). RT bit 0
    ("all paths" rather than shortest) is passed on for a richer policy; the default ignores
    it. The load-balancing work replaces this component (``Switch(path_selector=...)``).
    """

    def __init__(self):
        super().__init__({
            "scna": In(NTH16.field("scna").width),
            "dcna": In(NTH16.field("dcna").width),
            "lbf": In(NTH16.field("lbf").width),
            "rt": In(LPH.field("rt").width),
            "sequence": In(ENTROPY_BITS),
            "entropy": Out(ENTROPY_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        flow = _fold(Cat(self.scna, self.dcna, self.lbf), ENTROPY_BITS)
        per_packet = self.rt[1]
        m.d.comb += self.entropy.eq(Mux(per_packet, self.sequence, flow))
        return m


class IngressPort(wiring.Component):
    """Ingress of one port (see module docstring).

    Members
    -------
    i : In(packet_stream())                 packets from the link (switch port format)
    route_addr, route_en : Out              route table read (data next cycle)
    route_entry : In(ROUTE_ENTRY)           the entry read
    sl_to_vl : In(ArrayLayout(range(V), 16))      SL -> VL table
    ecmp_size : In(ArrayLayout(range(P+1), G))    members per ECMP group (0: empty)
    ecmp_member : In(ArrayLayout(ArrayLayout(8, P), G))   egress port of each member
    wr_*, abort : Out; full : In            the input's VoqBuffer write side
    drop : Out(len(SWITCH_DROP_REASONS))    one pulse per dropped packet, by reason
    commit, commit_vl, commit_bytes : Out   a packet entered the buffer
    """

    #: Broken variants for the formal mutant tests: ``write_slot_overwritten`` loads stage
    #: R's word into the write-side skid slot while the slot still holds one, and
    #: ``r_ready_ignores_slot`` lets stage R hand on its word while the slot is full (both
    #: fail ``ingress_words_in_order``); ``member_precompute_early`` computes stage Q's
    #: ready-made member indices from the arriving word's entropy instead of stage P's
    #: (fails ``ingress_route_precomputed``).
    MUTANTS = ("write_slot_overwritten", "r_ready_ignores_slot", "member_precompute_early")

    def __init__(self, cfg, *, path_selector=PathSelector, mutant=None):
        self.cfg = cfg
        self._path_selector = path_selector
        n, nv = cfg.ports, cfg.num_vls
        self.route_bits = (cfg.route_entries - 1).bit_length()
        sl_count = 1 << NTH16.field("sl").width
        max_bytes = cfg.max_packet_flits * WORD_BYTES
        super().__init__({
            "i": In(packet_stream()),
            "route_addr": Out(range(cfg.route_entries)),
            "route_en": Out(1),
            "route_entry": In(ROUTE_ENTRY),
            "sl_to_vl": In(data.ArrayLayout(range(nv), sl_count)),
            "ecmp_size": In(data.ArrayLayout(range(cfg.ecmp_max_paths + 1), cfg.ecmp_groups)),
            "ecmp_member": In(data.ArrayLayout(
                data.ArrayLayout(unsigned(ROUTE_ENTRY.size - 2), cfg.ecmp_max_paths),
                cfg.ecmp_groups)),
            "wr_en": Out(1),
            "wr_queue": Out(range(cfg.queues_per_input)),
            "wr_word": Out(PacketWord),
            "wr_tag": Out(range(n)),
            "abort": Out(1),
            "full": In(cfg.queues_per_input),
            "drop": Out(len(SWITCH_DROP_REASONS)),
            "commit": Out(1),
            "commit_vl": Out(range(nv)),
            "commit_bytes": Out(range(max_bytes + 1)),
        })
        if mutant not in (None, *self.MUTANTS):
            raise ValueError(f"unknown IngressPort mutant {mutant!r}")
        self.mutant = mutant

    def _reason(self, name):
        return list(SWITCH_DROP_REASONS).index(name)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n, nv = cfg.ports, cfg.num_vls

        # --- the link's word: i.ready comes from registers only -------------------------
        # Stage P takes the link's word whenever one of the four word registers (stages P,
        # Q, R and the write-side skid slot) is free, and each of them loads only from
        # registers (see stage R), so the link's valid never waits on a decision made
        # downstream and no decision ripples back into i.ready.
        word = self.i.payload
        in_valid = self.i.valid
        take = Signal()                       # stage P takes the link's word if offered
        m.d.comb += self.i.ready.eq(take)
        lph = header_view(word.data, LPH, 0)
        nth = header_view(word.data, NTH16, LPH_BYTES)
        reasons = len(SWITCH_DROP_REASONS)

        # --- parse the arriving word --------------------------------------------------
        m.submodules.path_selector = selector = self._path_selector()
        sequence = Signal(ENTROPY_BITS)       # packets seen on this input
        m.d.comb += [selector.scna.eq(nth.scna), selector.dcna.eq(nth.dcna),
                     selector.lbf.eq(nth.lbf), selector.rt.eq(lph.rt),
                     selector.sequence.eq(sequence)]
        cfg_value = lph.cfg
        reserved = Const(1, 1)
        for c in DATA_CFGS | {Cfg.CONTROL}:
            reserved = reserved & (cfg_value != c)
        early = Signal(reasons)               # reasons known from the word alone
        m.d.comb += [
            early[self._reason("malformed")].eq((cfg_value == Cfg.CONTROL) |
                                                (word.nbytes < HEADER_BYTES)),
            early[self._reason("reserved_cfg")].eq(reserved),
            early[self._reason("unsupported_cfg")].eq(~reserved & (cfg_value != Cfg.COMPACT16)
                                                      & (cfg_value != Cfg.CONTROL)),
        ]
        dcna = nth.dcna
        outside_table = dcna[self.route_bits:].any() if len(dcna) > self.route_bits else 0

        # --- stage P: the parsed word, the route table being read ----------------------
        p_valid = Signal()
        p_word = Signal(PacketWord)
        p_early = Signal(reasons)
        p_outside = Signal()
        p_vl = Signal(range(nv))
        p_entropy = Signal(ENTROPY_BITS)
        p_advance = Signal()                  # stage P hands its word to stage R
        accept = Signal()
        m.d.comb += [
            take.eq(~p_valid | p_advance),
            accept.eq(in_valid & take),
            self.route_addr.eq(dcna[:self.route_bits]),
            # Read whenever stage P loads, as its registers do (below): the entry out of the
            # RAM always belongs to the word in stage P, valid or not.
            self.route_en.eq(take),
        ]
        # Stage P loads whenever it is free (`take`), word or not (module docstring): a
        # transfer-keyed enable would be a coin flip for a native simulation's CPU.
        with m.If(take):
            m.d.sync += [
                p_valid.eq(in_valid), p_word.eq(word), p_early.eq(early),
                p_outside.eq(outside_table),
                p_vl.eq(self.sl_to_vl[nth.sl] if nv > 1 else 0),
                p_entropy.eq(selector.entropy),
            ]
        m.d.sync += sequence.eq(sequence + (accept & word.first))

        # --- stage Q: the route entry and its ECMP group, out of the RAM -----------------
        # The block RAM's output is slow; only the group lookup follows it in this cycle.
        paths = cfg.ecmp_max_paths
        port_bits = ROUTE_ENTRY.size - 2
        entry_in = self.route_entry
        q_valid = Signal()
        q_word = Signal(PacketWord)
        q_early = Signal(reasons)
        q_outside = Signal()
        q_vl = Signal(range(nv))
        q_entropy = Signal(ENTROPY_BITS)
        entry = Signal(ROUTE_ENTRY)
        # The entry's ECMP group, read from the table registers in stage Q (not at the edge
        # into it): the group multiplexer's select is the RAM's output, and behind the RAM's
        # slow clock-to-out it was the worst path (timing step 13, docs/switch.md).
        group_size = Signal(range(paths + 1))
        members = Signal(data.ArrayLayout(unsigned(port_bits), paths))
        # Ready-made route checks (see the module docstring), each equal to what stage Q
        # would compute from the registers beside it (``ingress_route_precomputed``):
        # by group size, for every value the size register can hold (the switch's raw table
        # port does not refuse sizes above ecmp_max_paths); at least one bit wide: an array
        # of zero-width elements is no value
        sizes = 1 << len(group_size)
        member_bits = len(Signal(range(paths)))
        member_of_size = Signal(data.ArrayLayout(unsigned(max(1, member_bits)), sizes))
        target_missing = Signal()             # entry.target >= ports
        member_missing = Signal(paths)        # members[k] >= ports
        group_in_table = Signal()             # entry.target < ecmp_groups

        def member_for(entropy, size):
            # Multiply-shift range reduction: uniform over the group for uniform entropy
            # (cut to the member index width, as the index has always been).
            return ((entropy * size) >> ENTROPY_BITS)[:member_bits]

        group_bits = (cfg.ecmp_groups - 1).bit_length()

        def group_of(table, target):
            # An Array indexed by the group bits of the target, not ``table[target]``: a
            # view indexed by a value becomes a shift of the whole table (a 512-bit shift
            # per clock in Verilator for the member table). Only the low bits, because an
            # Array gives an out-of-range index its last element, which costs a compare
            # chain behind the route RAM; targets past the groups are rejected by
            # group_in_table whatever they select here.
            if cfg.ecmp_groups == 1:
                return table[0]
            return Array(table[g] for g in range(cfg.ecmp_groups))[target[:group_bits]]

        entropy_for_members = (p_entropy if self.mutant != "member_precompute_early"
                               else selector.entropy)
        # "Port exists" per member of every group, from the table registers (in parallel
        # with the RAM read), so only the group multiplexer follows the entry register.
        missing_by_group = Signal(data.ArrayLayout(unsigned(paths), cfg.ecmp_groups))
        for g in range(cfg.ecmp_groups):
            m.d.comb += [missing_by_group[g][k].eq(_at_least(self.ecmp_member[g][k], n))
                         for k in range(paths)]
        q_advance = Signal()                  # stage Q hands its word to stage R
        q_take = Signal()                     # stage Q is free: it loads (as stage P)
        m.d.comb += [q_take.eq(~q_valid | q_advance), p_advance.eq(p_valid & q_take)]
        with m.If(q_take):
            m.d.sync += [
                q_valid.eq(p_valid), q_word.eq(p_word), q_early.eq(p_early),
                q_outside.eq(p_outside),
                q_vl.eq(p_vl), q_entropy.eq(p_entropy), entry.eq(entry_in),
                target_missing.eq(_at_least(entry_in.target, n)),
                group_in_table.eq(~_at_least(entry_in.target, cfg.ecmp_groups)),
            ]
            m.d.sync += [member_of_size[size].eq(member_for(entropy_for_members, size))
                         for size in range(sizes)]

        m.d.comb += [
            group_size.eq(group_of(self.ecmp_size, entry.target)),
            members.eq(group_of(self.ecmp_member, entry.target)),
            member_missing.eq(group_of(missing_by_group, entry.target)),
        ]

        # --- resolve the route (first words) --------------------------------------------
        port = Signal(port_bits)
        member = Signal(range(paths))
        m.d.comb += member.eq(member_of_size[group_size])
        group_ok = group_in_table & (group_size != 0)
        m.d.comb += port.eq(Mux(entry.ecmp, members[member], entry.target))
        port_missing = Mux(entry.ecmp, member_missing.bit_select(member, 1), target_missing)
        unknown = ~entry.valid | q_outside | (entry.ecmp & ~group_ok) | port_missing
        precomputed_ok = ((member == member_for(q_entropy, group_size))
                          & (target_missing == (entry.target >= n))
                          & (group_in_table == (entry.target < cfg.ecmp_groups)))
        for k in range(paths):
            precomputed_ok = precomputed_ok & (member_missing[k] == (members[k] >= n))
        # Checked in every simulation; q_entropy feeds only this check (synthesis drops it).
        m.d.comb += Assert(~q_valid | precomputed_ok, "ingress_route_precomputed")
        reason = Signal(reasons)
        m.d.comb += reason.eq(q_early)
        with m.If(q_early == 0):
            m.d.comb += reason[self._reason("unknown_destination")].eq(unknown)
        # Report only the first reason (in SWITCH_DROP_REASONS order).
        first_reason = Signal(reasons)
        m.d.comb += first_reason.eq(reason & (~reason + 1))
        p_queue = Signal(range(cfg.queues_per_input))
        m.d.comb += p_queue.eq(q_vl if cfg.queueing == "fifo" else port * nv + q_vl)

        # --- register stage R: the resolved route ----------------------------------------
        stage_r = data.StructLayout({
            "word": PacketWord,
            "reason": reasons,                # all reasons (any -> drop)
            "first_reason": reasons,          # the one counted
            "port": range(n),
            "vl": range(nv),
            "queue": range(cfg.queues_per_input),
        })
        r_valid = Signal()
        r = Signal(stage_r)
        r_ready = Signal()                    # stage R's word leaves: the write slot is empty
        r_take = Signal()                     # stage R is free: it loads (as stage P)
        m.d.comb += [r_take.eq(~r_valid | r_ready), q_advance.eq(q_valid & r_take)]
        with m.If(r_take):
            m.d.sync += [r_valid.eq(q_valid), r.word.eq(q_word), r.reason.eq(reason),
                         r.first_reason.eq(first_reason), r.port.eq(port[:len(r.port)]),
                         r.vl.eq(q_vl), r.queue.eq(p_queue)]

        # --- write-side skid slot: stage R's ready is a register -----------------------
        # Stage R hands its word on whenever the slot is empty; a word the write does not
        # finish that cycle (queue full, abort) waits in the slot, and the write takes the
        # slot's word before stage R's. The slot's data loads whenever it is empty (its load
        # enable is a register too); only its valid flag depends on the write.
        slot_valid = Signal()
        slot = Signal(stage_r)
        consume = Signal()                    # the write finishes its word this cycle
        m.d.comb += r_ready.eq(~slot_valid if self.mutant != "r_ready_ignores_slot" else 1)
        slot_load = ~slot_valid if self.mutant != "write_slot_overwritten" else 1
        with m.If(slot_load):
            m.d.sync += slot.eq(r)
        with m.If(~slot_valid):
            m.d.sync += slot_valid.eq(r_valid & ~consume)
        with m.Elif(consume):
            m.d.sync += slot_valid.eq(0)
        w_valid = slot_valid | r_valid
        w = Signal(stage_r)                   # the word the write works on
        m.d.comb += w.eq(Mux(slot_valid, slot, r))

        # --- per-packet state ----------------------------------------------------------
        in_packet = Signal()                  # words are being written to cur_queue
        discarding = Signal()                 # words are dropped up to the next `last`
        cur_queue = Signal(range(cfg.queues_per_input))
        cur_port = Signal(range(n))
        cur_vl = Signal(range(nv))
        words = Signal(range(cfg.max_packet_flits + 1))
        nbytes = Signal(range(cfg.max_packet_flits * WORD_BYTES + 1))

        out_word = Signal(PacketWord)
        # LPH.VL rewritten to the egress VL on every first word: only a first word that opens
        # a packet is written (a dropped or aborting one is not), so this is the same as
        # rewriting it in that branch below, without the write decision in front of the
        # data (nor a branch on it in a native simulation).
        m.d.comb += [out_word.eq(w.word), self.wr_word.eq(out_word)]
        with m.If(w.word.first):
            m.d.comb += header_view(out_word.data, LPH, 0).vl.eq(w.vl)
        target_queue = Mux(w.word.first, w.queue, cur_queue)
        m.d.comb += [
            self.wr_queue.eq(target_queue),
            self.wr_tag.eq(Mux(w.word.first, w.port, cur_port)),
        ]
        full = self.full.bit_select(target_queue, 1)
        last = w.word.last

        def drop(name):
            m.d.comb += self.drop[self._reason(name)].eq(1)

        def write():
            # Words and bytes of the packet so far, this word included.
            words_now = Mux(w.word.first, 0, words) + 1
            bytes_now = Mux(w.word.first, 0, nbytes) + w.word.nbytes
            with m.If(~full):
                m.d.comb += [self.wr_en.eq(1), consume.eq(1)]
                m.d.sync += [in_packet.eq(~last), words.eq(Mux(last, 0, words_now)),
                             nbytes.eq(Mux(last, 0, bytes_now))]
                with m.If(last):
                    m.d.comb += [self.commit.eq(1), self.commit_bytes.eq(bytes_now)]

        with m.If(w_valid):
            with m.If(w.word.first):
                with m.If(in_packet):
                    # The open packet never got its `last`: take it back, then (next
                    # cycle) treat this word as the start of a new packet.
                    m.d.comb += self.abort.eq(1)
                    drop("malformed")
                    m.d.sync += [in_packet.eq(0), words.eq(0), nbytes.eq(0)]
                with m.Elif(w.reason.any()):
                    m.d.comb += [consume.eq(1), self.drop.eq(w.first_reason)]
                    m.d.sync += discarding.eq(~last)
                with m.Else():
                    m.d.comb += self.commit_vl.eq(w.vl)
                    m.d.sync += [cur_queue.eq(w.queue), cur_port.eq(w.port), cur_vl.eq(w.vl),
                                 discarding.eq(0)]
                    write()
            with m.Elif(discarding):
                m.d.comb += consume.eq(1)
                m.d.sync += discarding.eq(~last)
            with m.Elif(~in_packet):
                # A word outside any packet: drop the run up to its `last`, count it once.
                m.d.comb += consume.eq(1)
                drop("malformed")
                m.d.sync += discarding.eq(~last)
            with m.Elif(words == cfg.max_packet_flits):
                m.d.comb += [consume.eq(1), self.abort.eq(1)]
                drop("oversize")
                m.d.sync += [in_packet.eq(0), discarding.eq(~last), words.eq(0), nbytes.eq(0)]
            with m.Else():
                m.d.comb += self.commit_vl.eq(cur_vl)
                write()
        return m
