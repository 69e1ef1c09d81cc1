"""VoqBuffer: the packet buffer of one switch input, split into queues.

One block RAM per input holds every queue of that input; the pool is **partitioned**: queue
``q`` owns the ``queue_flits`` words at ``q * queue_flits`` (docs/switch.md explains why: a
rollback of a partial packet is a pointer reset, the RAM has one write and one read port --
exactly one flit in and one flit out per clock -- and the occupancy of a queue can be
proven bounded; the cost is memory that grows with the number of queues).

Queues are store-and-forward: a packet is readable once its last flit is written. At most
one packet per input is open (being written) at a time, so the open packet's start is one
register, not one per queue.

Beside each flit a small distributed RAM keeps its ``last`` bit and a ``tag`` (the switch
stores the packet's output port there), readable combinationally. The ``last`` bit of every
queue's head flit is also kept in a register (``head_last``, refreshed from the word after
the one being read, or from the word being written into an empty queue), so the reader knows
in the cycle it reads a flit whether the packet ends there without a RAM read on the path
into the allocator -- the input is free for a new allocation in the very next cycle -- and
FIFO queueing can see the output of every head packet.

Protocol the user (the switch) keeps, assumed by the formal harness:

* write only to a queue that is not ``full``; ``abort`` only while a packet is open and
  never in the same cycle as a write; a packet is written to one queue from first to last;
* start reading a queue only when ``ready`` (a complete packet at its head) and read a
  started packet to its end before reading another queue.
"""

from amaranth.hdl import Assert, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from ..common.arith import masked_mux, word_pick
from ..stream import PacketWord

__all__ = ["VoqBuffer"]


class VoqBuffer(wiring.Component):
    """Partitioned multi-queue packet buffer of ``num_queues`` x ``queue_flits`` words.

    Parameters
    ----------
    num_queues : int
        Queues; queue ``q`` carries VL ``q % num_vls`` (for the per-VL occupancy).
    queue_flits : int
        Words per queue (a power of two; at least the largest packet).
    tag_bits : int
        Width of the per-packet tag stored beside every word.
    head_tags : bool
        Provide ``head_tag[q]`` (the tag of each queue's head word) for every queue.
    word_layout : Layout
        What a word is (default :data:`PacketWord`); any layout with a ``last`` field. The
        formal harness uses a one-bit word, since the data does not affect occupancy.
    mutant : str or None
        Broken variants for the formal mutant tests: ``abort_keeps_used`` (a rollback forgets
        to release the words), ``full_late`` (``full`` rises one word too late),
        ``head_last_stale`` (a queue's head ``last`` register is not refreshed when its head
        word is read).

    Members
    -------
    wr_en, wr_queue, wr_word, wr_tag : In
        Write one word (commits the packet when ``wr_word.last``).
    abort : In(1)
        Take back the open packet.
    full : Out(num_queues)
        Queue ``q`` cannot take another word.
    ready : Out(num_queues)
        Queue ``q`` has a complete packet at its head.
    head_tag : Out(ArrayLayout(tag_bits, num_queues))
        Tag of each queue's head word (only with ``head_tags``).
    rd_en, rd_queue : In
        Read the head word of ``rd_queue``; it shows on ``rd_word`` in the next cycle and
        stays there until the next read.
    rd_last : Out(1)
        The word being read now (head of ``rd_queue``) is the last of its packet.
    rd_plan : In(1)  (only with ``planned_reads``)
        A read of ``rd_queue`` is planned this cycle: ``rd_en`` is this or 0 (a stalled
        reader). ``ready_next`` and ``head_tag_next`` then assume the planned read, so they
        do not depend on the late ``rd_en``.
    ready_next : Out(num_queues)
        Queue ``q`` will have a complete packet at its head after this cycle's read (the
        planned read with ``planned_reads``; a packet committed in this cycle is not
        counted). The switch allocates one cycle ahead of the read, so it asks whether a
        queue is ready *next* cycle. When a planned read does not happen, ``ready_next``
        under-counts (safe), but ``head_tag_next`` may show the packet after the head: the
        user must then ignore both for this cycle.
    head_tag_next : Out(ArrayLayout(tag_bits, num_queues))
        The same for ``head_tag`` (only with ``head_tags``).
    rd_word : Out(PacketWord)
    used : Out(ArrayLayout(range(queue_flits + 1), num_queues))
        Words held per queue (the open packet included).
    occupancy : Out(ArrayLayout(range(num_queues * queue_flits + 1), num_vls))
        Words held per VL.
    """

    MUTANTS = ("abort_keeps_used", "full_late", "head_last_stale")

    def __init__(self, num_queues, queue_flits, *, num_vls=1, tag_bits=1, head_tags=False,
                 planned_reads=False, word_layout=PacketWord, mutant=None):
        if queue_flits < 2 or queue_flits & (queue_flits - 1):
            raise ConfigError(f"VoqBuffer queue_flits must be a power of two >= 2, "
                              f"got {queue_flits}")
        if num_queues < 1 or num_queues % num_vls:
            raise ConfigError(f"VoqBuffer: {num_queues} queues do not split into "
                              f"{num_vls} VLs")
        if mutant not in (None, *self.MUTANTS):
            raise ConfigError(f"unknown VoqBuffer mutant {mutant!r}")
        self.num_queues = num_queues
        self.queue_flits = queue_flits
        self.num_vls = num_vls
        self.tag_bits = tag_bits
        self.head_tags = head_tags
        self.planned_reads = planned_reads
        self.mutant = mutant
        self.word_layout = word_layout
        members = {
            "wr_en": In(1),
            "wr_queue": In(range(num_queues)),
            "wr_word": In(word_layout),
            "wr_tag": In(tag_bits),
            "abort": In(1),
            "full": Out(num_queues),
            "ready": Out(num_queues),
            "rd_en": In(1),
            "rd_queue": In(range(num_queues)),
            "rd_last": Out(1),
            "ready_next": Out(num_queues),
            "rd_word": Out(word_layout),
            "used": Out(data.ArrayLayout(range(queue_flits + 1), num_queues)),
            "occupancy": Out(data.ArrayLayout(range(num_queues * queue_flits + 1), num_vls)),
        }
        if planned_reads:
            members["rd_plan"] = In(1)
        if head_tags:
            members["head_tag"] = Out(data.ArrayLayout(unsigned(tag_bits), num_queues))
            members["head_tag_next"] = Out(data.ArrayLayout(unsigned(tag_bits), num_queues))
        super().__init__(members)

    def _address(self, queue, pointer):
        return Cat(pointer, queue)

    def elaborate(self, platform):
        m = Module()
        nq, depth = self.num_queues, self.queue_flits
        words = nq * depth
        meta_layout = data.StructLayout({"last": 1, "tag": self.tag_bits})
        m.submodules.flits = flits = Memory(shape=self.word_layout, depth=words, init=[])
        m.submodules.meta = meta = Memory(shape=meta_layout, depth=words, init=[])
        flit_wr = flits.write_port()
        flit_rd = flits.read_port(domain="sync")
        meta_wr = meta.write_port()
        meta_rd = meta.read_port(domain="comb")

        wptr = [Signal(range(depth), name=f"wptr{q}") for q in range(nq)]
        rptr = [Signal(range(depth), name=f"rptr{q}") for q in range(nq)]
        used = [Signal(range(depth + 1), name=f"used{q}") for q in range(nq)]
        packets = [Signal(range(depth + 1), name=f"packets{q}") for q in range(nq)]
        open_packet = Signal()
        open_queue = Signal(range(nq))
        open_start = Signal(range(depth))
        open_words = Signal(range(depth + 1))

        wq, rq = self.wr_queue, self.rd_queue
        w_ptr = Signal(range(depth))
        r_ptr = Signal(range(depth))
        # (Word picks, not a Switch: the queues change with every arrival and read, and a
        # native simulation would branch on them; arith.word_pick.)
        m.d.comb += [w_ptr.eq(word_pick(wptr, wq)), r_ptr.eq(word_pick(rptr, rq))]

        # --- write side ----------------------------------------------------------------
        write = self.wr_en
        commit = write & self.wr_word.last
        # The RAMs are written whenever the addressed queue has room, word or no word: the
        # slot at a queue's write pointer is free, and it joins the queue only through a real
        # write, which lands on the same slot. So the enable carries no write decision, and
        # a native simulation has no branch on random arrivals here (docs/switch.md,
        # "Simulation speed", session 11). A full queue's write pointer is its head: no write.
        room = ~self.full.bit_select(wq, 1)
        m.d.comb += [
            flit_wr.addr.eq(self._address(wq, w_ptr)),
            flit_wr.data.eq(self.wr_word),
            flit_wr.en.eq(room),
            meta_wr.addr.eq(self._address(wq, w_ptr)),
            meta_wr.data.last.eq(self.wr_word.last),
            meta_wr.data.tag.eq(self.wr_tag),
            meta_wr.en.eq(room),
        ]
        # The open packet's queue and start load whenever no packet is open (they are read
        # only while one is), without the write in their enable: a native simulation
        # mispredicts an enable keyed on random writes. The count keeps its enable (the
        # write decision in front of its carry chain would be slower in hardware).
        with m.If(~open_packet):
            m.d.sync += [open_queue.eq(wq), open_start.eq(w_ptr)]
        m.d.sync += open_packet.eq((write & ~self.wr_word.last)
                                   | (~write & ~self.abort & open_packet))
        with m.If(write):
            m.d.sync += open_words.eq(Mux(self.wr_word.last, 0, open_words + 1))
        with m.Elif(self.abort):
            m.d.sync += open_words.eq(0)

        # --- read side -----------------------------------------------------------------
        m.d.comb += [
            flit_rd.addr.eq(self._address(rq, r_ptr)),
            flit_rd.en.eq(self.rd_en),
            self.rd_word.eq(flit_rd.data),
            meta_rd.addr.eq(self._address(rq, r_ptr)),
        ]
        # The word after the one being read: the queue's next head (its `last` refreshes
        # head_last; when the read ends a packet, its tag is the next packet's head tag).
        after = meta.read_port(domain="comb")
        m.d.comb += after.addr.eq(self._address(rq, (r_ptr + 1)[:len(r_ptr)]))
        head_last = Signal(nq)
        m.d.comb += self.rd_last.eq(head_last.bit_select(rq, 1))
        read = self.rd_en
        done = read & self.rd_last
        # What ready_next / head_tag_next assume is read this cycle.
        planned = self.rd_plan if self.planned_reads else read
        if self.planned_reads:
            m.d.comb += Assert(~read | self.rd_plan, "voq_read_was_planned")
        # The register must agree with the RAM it shadows (checked in every simulation, at
        # the clock edge: the read queue settles combinationally within the cycle).
        m.d.sync += Assert(~read | (self.rd_last == meta_rd.data.last),
                           "voq_head_last_matches_ram")

        # --- per-queue state -----------------------------------------------------------
        aborted = self.abort & ~write
        for q in range(nq):
            w_here = write & (wq == q)
            r_here = read & (rq == q)
            a_here = aborted & (open_queue == q)
            released = Mux(a_here, open_words, 0)
            if self.mutant == "abort_keeps_used":
                released = 0
            # Pointers as masked multiplexers, without an enable: a native simulation
            # mispredicts an enable keyed on random reads and writes. (Advanced by the event
            # bit instead, ``rptr + r_here``, the late read decision ran through the carry
            # chain and the switch synthesized slower: docs/switch.md, session 11.)
            m.d.sync += [
                wptr[q].eq(Mux(a_here, open_start,
                               masked_mux(w_here, (wptr[q] + 1)[:len(wptr[q])], wptr[q]))),
                rptr[q].eq(masked_mux(r_here, (rptr[q] + 1)[:len(rptr[q])], rptr[q])),
                used[q].eq(used[q] + w_here - r_here - released),
                packets[q].eq(packets[q] + (w_here & self.wr_word.last) - (r_here & done)),
            ]
            limit = depth + 1 if self.mutant == "full_late" else depth
            ends_here = planned & (rq == q) & self.rd_last
            # head_last[q] = `last` of the word at rptr[q] whenever the queue holds a word.
            with m.If(r_here & (self.mutant != "head_last_stale")):
                with m.If(used[q] > 1):
                    m.d.sync += head_last[q].eq(after.data.last)
                with m.Elif(w_here):
                    m.d.sync += head_last[q].eq(self.wr_word.last)
            with m.Elif(w_here & (used[q] == 0)):
                m.d.sync += head_last[q].eq(self.wr_word.last)
            m.d.comb += [
                self.full[q].eq(used[q] >= limit),
                self.ready[q].eq(packets[q] != 0),
                self.ready_next[q].eq(Mux(ends_here, packets[q] > 1, packets[q] != 0)),
                self.used[q].eq(used[q]),
            ]
            if self.head_tags:
                head = meta.read_port(domain="comb")
                m.d.comb += [head.addr.eq(self._address(q, rptr[q])),
                             self.head_tag[q].eq(head.data.tag),
                             self.head_tag_next[q].eq(Mux(ends_here, after.data.tag,
                                                          head.data.tag))]

        # --- per-VL occupancy (kept incrementally: summing queues would be a wide adder) --
        nv = self.num_vls
        for v in range(nv):
            occ = Signal(range(words + 1), name=f"occupancy_vl{v}")
            w_vl = write & (wq % nv == v) if nv > 1 else write
            r_vl = read & (rq % nv == v) if nv > 1 else read
            a_vl = aborted & (open_queue % nv == v) if nv > 1 else aborted
            released = Mux(a_vl, open_words, 0)
            m.d.sync += occ.eq(occ + w_vl - r_vl - released)
            m.d.comb += self.occupancy[v].eq(occ)

        self._properties(m, wptr, rptr, used, packets, open_packet, open_queue, open_words)
        return m

    def _properties(self, m, wptr, rptr, used, packets, open_packet, open_queue, open_words):
        """Invariants proven by ``ubproto prove voq-occupancy`` and checked in simulation."""
        depth = self.queue_flits
        bounded, pointers, packets_ok = 1, 1, 1
        for q in range(self.num_queues):
            bounded = bounded & (used[q] <= depth)
            # A full queue has equal pointers, like an empty one: compare modulo the depth.
            pointers = pointers & ((wptr[q] - rptr[q])[:len(wptr[q])] == used[q][:len(wptr[q])])
            # Complete packets take at least a word each; the open packet's words are extra.
            open_here = Mux(open_packet & (open_queue == q), open_words, 0)
            packets_ok = packets_ok & (packets[q] + open_here <= used[q])
        m.d.comb += [
            Assert(bounded, "voq_used_within_region"),
            Assert(pointers, "voq_pointers_agree_with_used"),
            Assert(packets_ok, "voq_packets_within_used"),
        ]
