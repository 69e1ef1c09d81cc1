"""Formal harnesses of the switch, registered for ``ubproto prove`` (verify/formal.py).

Each factory takes ``mutant=None`` and returns the design to check; docs/switch.md lists the
properties, the bounds and the mutant that makes each one fail.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Mux, Signal, Value
from amaranth.lib import data, wiring

from .allocator import FifoAllocator, IslipAllocator, matching_properties
from ..proto.formats import LPH, NTH16, Cfg
from ..proto.layouts import header_view
from ..stream import WORD_BYTES
from .egress import EgressVlScheduler
from .ingress import IngressPort
from .voq import VoqBuffer

__all__ = ["AllocatorHarness", "starvation_bound", "formal_islip", "formal_islip_starvation",
           "formal_fifo_allocator",
           "VoqHarness", "formal_voq", "VlSchedulerHarness", "formal_vl_scheduler",
           "IngressHarness", "formal_ingress"]


def starvation_bound(allocator, num_ports):
    """Rounds within which an input that keeps requesting an output is granted it
    (derivation in docs/switch.md, "Allocator properties").

    FIFO allocator (one request per input): the output's round-robin pointer passes each of
    the other N-1 inputs at most once, so N rounds. iSLIP-1, with requests that persist
    until granted: at most (N-1)(N(N+1)/2 + 1) rounds without the grant, so that + 1.
    """
    n = num_ports
    if allocator == "fifo":
        return n
    return (n - 1) * (n * (n + 1) // 2 + 1) + 1


class AllocatorHarness(Elaboratable):
    """An allocator with every request free, plus:

    * the matching properties (``input_granted_at_most_once``,
      ``output_granted_at_most_once``, ``only_requested_pairs_granted``);
    * ``continuous_request_granted_within_bound``: an input that requests one output in
      every round (input 0 -> output ``num_ports - 1``) is granted it within
      :func:`starvation_bound` rounds, whatever the other inputs request;
    * covers: a full matching (every input matched) and the longest wait.
    """

    def __init__(self, allocator, num_ports, bound=None, *, single_request=False):
        self.allocator = allocator
        self.num_ports = num_ports
        self.bound = bound                  # None: check the matching only
        self.single_request = single_request

    def elaborate(self, platform):
        m = Module()
        n = self.num_ports
        m.submodules.alloc = alloc = self.allocator
        request, grant = alloc.request, alloc.grant
        m.d.comb += request.eq(AnySeq(n * n))
        matching_properties(m, request, grant, n, n)
        # Requests persist until granted: a virtual output queue does not empty by itself
        # (only its own grant takes a packet out), so a request withdrawn without a grant
        # never happens in the switch. Without this, adversarial flickering requests can
        # starve an input under iSLIP (a counterexample is found at any bound).
        unserved = Signal(n * n)
        m.d.sync += unserved.eq(request.as_value() & ~grant.as_value())
        m.d.comb += Assume((unserved & ~request.as_value()) == 0, "requests_persist_until_granted")
        if self.single_request:
            # FIFO queueing: only the head packet of each input requests.
            for i in range(n):
                m.d.comb += Assume((request[i] & (request[i] - 1))[:n] == 0,
                                   f"input{i}_requests_one_output")
        full = 1
        for i in range(n):
            full = full & grant[i].any()
        m.d.comb += Cover(full, "cover_full_matching")
        if self.bound is None:
            return m

        watched_in, watched_out = 0, n - 1
        waiting = Signal(range(self.bound + 2))
        asked = request[watched_in][watched_out]
        served = grant[watched_in][watched_out]
        with m.If(asked & ~served):
            m.d.sync += waiting.eq(waiting + 1)
        with m.Else():
            m.d.sync += waiting.eq(0)
        # ``waiting`` counts the earlier rounds of the current unserved streak; a round that
        # is also unserved makes it waiting + 1 long, which must stay below the bound.
        m.d.comb += Assert(~asked | served | (waiting + 1 < self.bound),
                           "continuous_request_granted_within_bound")
        m.d.comb += Cover(asked & served & (waiting + 1 == self.bound),
                          "cover_granted_in_last_round")
        return m


def formal_islip(*, ports=4, iterations=2, mutant=None):
    """Matching properties of iSLIP (k-induction; the allocator is combinational in them)."""
    return AllocatorHarness(IslipAllocator(ports, iterations=iterations, mutant=mutant), ports)


def formal_islip_starvation(*, ports=3, mutant=None, bound=None):
    """iSLIP-1: a persistently requesting input is granted within starvation_bound rounds."""
    alloc = IslipAllocator(ports, iterations=1, mutant=mutant)
    return AllocatorHarness(alloc, ports, bound or starvation_bound("islip", ports))


def formal_fifo_allocator(*, ports=4, mutant=None, bound=None):
    """FIFO allocator: matching, and a head packet is granted within N rounds.
    ``mutant="tight_bound"`` claims N - 1 rounds, which the solver refutes."""
    if mutant not in (None, "tight_bound"):
        raise ValueError(f"unknown mutant {mutant!r}")
    bound = bound or starvation_bound("fifo", ports) - (mutant == "tight_bound")
    return AllocatorHarness(FifoAllocator(ports), ports, bound, single_request=True)


class VoqHarness(Elaboratable):
    """A :class:`VoqBuffer` driven by a free writer and reader that keep its protocol.

    Adds ``voq_occupancy_matches_enqueue_dequeue``: the words the buffer says it holds equal
    the words written minus the words read minus the words of aborted packets, counted
    outside the buffer from its handshakes alone. The buffer's own invariants
    (``voq_used_within_region``, ``voq_pointers_agree_with_used``,
    ``voq_packets_within_used``) are proven with it.
    """

    def __init__(self, voq):
        self.voq = voq

    def elaborate(self, platform):
        m = Module()
        m.submodules.voq = voq = self.voq
        nq = voq.num_queues
        total = nq * voq.queue_flits
        m.d.comb += [
            voq.wr_en.eq(AnySeq(1)), voq.wr_queue.eq(AnySeq(len(voq.wr_queue))),
            voq.wr_word.last.eq(AnySeq(1)), voq.abort.eq(AnySeq(1)),
            voq.rd_en.eq(AnySeq(1)), voq.rd_queue.eq(AnySeq(len(voq.rd_queue))),
        ]
        # The writer's side of the protocol.
        writing = Signal()          # a packet is open
        writing_queue = Signal(range(nq))
        with m.If(voq.wr_en):
            m.d.sync += [writing.eq(~voq.wr_word.last), writing_queue.eq(voq.wr_queue)]
        with m.Elif(voq.abort):
            m.d.sync += writing.eq(0)
        m.d.comb += [
            Assume(voq.wr_queue < nq, "queue_exists"),
            Assume(~voq.wr_en | ~voq.full.bit_select(voq.wr_queue, 1), "write_only_when_not_full"),
            Assume(~voq.abort | (writing & ~voq.wr_en), "abort_only_an_open_packet"),
            Assume(~(voq.wr_en & writing) | (voq.wr_queue == writing_queue),
                   "packet_stays_in_its_queue"),
        ]
        # The reader's side.
        reading = Signal()
        reading_queue = Signal(range(nq))
        with m.If(voq.rd_en):
            m.d.sync += [reading.eq(~voq.rd_last), reading_queue.eq(voq.rd_queue)]
        m.d.comb += [
            Assume(voq.rd_queue < nq, "read_queue_exists"),
            Assume(~voq.rd_en | Mux(reading, voq.rd_queue == reading_queue,
                                    voq.ready.bit_select(voq.rd_queue, 1)),
                   "read_complete_packets_to_their_end"),
        ]
        # Independent bookkeeping from the handshakes.
        held = Signal(range(total + 1))
        open_words = Signal(range(total + 1))
        with m.If(voq.wr_en):
            m.d.sync += open_words.eq(Mux(voq.wr_word.last, 0, open_words + 1))
        with m.Elif(voq.abort):
            m.d.sync += open_words.eq(0)
        dropped = Mux(voq.abort & ~voq.wr_en, open_words, 0)
        m.d.sync += held.eq(held + voq.wr_en - voq.rd_en - dropped)
        in_buffer = sum(voq.used[q] for q in range(nq))
        m.d.comb += Assert(in_buffer == held, "voq_occupancy_matches_enqueue_dequeue")
        by_vl = sum(voq.occupancy[v] for v in range(voq.num_vls))
        m.d.comb += Assert(by_vl == held, "voq_vl_occupancy_matches_enqueue_dequeue")
        m.d.comb += Cover(voq.full.any() & voq.rd_en, "cover_full_queue_drains")
        return m


def formal_voq(*, queues=2, queue_flits=2, num_vls=2, mutant=None):
    # A one-bit word: the flit data never influences occupancy, and a 167-bit memory only
    # slows the solver down.
    word = data.StructLayout({"last": 1})
    return VoqHarness(VoqBuffer(queues, queue_flits, num_vls=num_vls, word_layout=word,
                                mutant=mutant))


class VlSchedulerHarness(Elaboratable):
    """An :class:`EgressVlScheduler` with every input free (eligibility, strict mask,
    quanta, starts, sent flits), for its own property ``dwrr_no_credit_off_turn``."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def elaborate(self, platform):
        m = Module()
        m.submodules.sched = s = self.scheduler
        nv = s.num_vls
        m.d.comb += [s.eligible.eq(AnySeq(nv)), s.strict.eq(AnySeq(nv)),
                     s.start.eq(AnySeq(1)), s.sent.eq(AnySeq(1)),
                     s.sent_vl.eq(AnySeq(len(s.sent_vl)))]
        for v in range(nv):
            m.d.comb += s.quantum[v].eq(AnySeq(s.quantum_bits))
        # Starts are free too: the switch's requests re-check the current queues, so a start
        # can come while the (registered, older) eligibility shows nothing.
        m.d.comb += Assume(s.sent_vl < nv, "sent_vl_exists")
        return m


def formal_vl_scheduler(*, num_vls=3, mutant=None):
    """Bounded: free ``sent`` pulses could wrap a deficit after 2^(bits-1) flits, which no
    switch does (every flit belongs to a started packet), so induction is not attempted."""
    return VlSchedulerHarness(EgressVlScheduler(num_vls, 3, 2, mutant=mutant))


class IngressHarness(Elaboratable):
    """An :class:`~.ingress.IngressPort` fed well-formed, routable packets whose words carry
    a sequence stamp, with every other input free (queue-full flags at any time, tables,
    route entries), for ``ingress_words_in_order``: the buffer is written every word, once
    each, in arrival order -- through the input skid slot, stages P, Q and R and the
    write-side skid slot, whatever the stalls.

    Only packets that are never dropped are offered, so every word that enters must come
    out as a write: a word lost, written twice or overtaken shows as a stamp out of turn.
    """

    #: Stamp width: more than the words the ingress can hold (two skid slots, three
    #: stages), so a modular stamp never aliases within them.
    STAMP_BITS = 4

    def __init__(self, ingress):
        self.ingress = ingress

    def elaborate(self, platform):
        m = Module()
        m.submodules.ingress = ing = self.ingress
        cfg = ing.cfg
        for _path, member, value in ing.signature.flatten(ing):
            if member.flow is wiring.In:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(len(value)))
        word = ing.i.payload
        offered = ing.i.valid
        taken = ing.i.valid & ing.i.ready
        # The stamp sits in the word's last byte (data is big-endian), behind the headers.
        stamp = word.data[:self.STAMP_BITS]

        # The link's side: packets of 1..max_packet_flits full words, framed correctly.
        open_packet = Signal()
        open_words = Signal(range(cfg.max_packet_flits + 1))
        sent = Signal(self.STAMP_BITS)
        with m.If(taken):
            m.d.sync += [open_packet.eq(~word.last), sent.eq(sent + 1),
                         open_words.eq(Mux(word.last, 0, Mux(word.first, 1, open_words + 1)))]
        words_with_this = Mux(word.first, 1, open_words + 1)
        lph = header_view(word.data, LPH, 0)
        nth = header_view(word.data, NTH16, LPH.nbytes)
        entry = ing.route_entry
        m.d.comb += [
            Assume(~offered | (word.first == ~open_packet), "packets_framed"),
            Assume(~offered | (words_with_this < cfg.max_packet_flits) | word.last,
                   "packets_within_max_flits"),
            Assume(~offered | (word.nbytes == WORD_BYTES), "words_full"),
            Assume(~offered | ~word.first | ((lph.cfg == Cfg.COMPACT16)
                                             & (nth.dcna < cfg.route_entries)),
                   "headers_routable"),
            Assume(entry.valid & ~entry.ecmp & (entry.target < cfg.ports), "routes_direct"),
            Assume(~offered | (stamp == sent), "words_stamped_in_order"),
        ]

        # The buffer's side: the stamps written, counted from the writes alone.
        written = Signal(self.STAMP_BITS)
        with m.If(ing.wr_en):
            m.d.sync += written.eq(written + 1)
        m.d.comb += Assert(~ing.wr_en | (ing.wr_word.data[:self.STAMP_BITS] == written),
                           "ingress_words_in_order")
        return m


def formal_ingress(*, mutant=None):
    """Bounded: the stage registers hold words the solver could set to anything in an
    induction step, so the order is checked from reset (the mutants fail within 8 steps).
    The ingress's own ``ingress_route_precomputed`` is checked with it."""
    from ...config import SwitchConfig
    # Two ECMP groups of two members: the ready-made member indices and port checks of
    # stage Q (``ingress_route_precomputed``) have more than one value to get wrong.
    cfg = SwitchConfig(ports=2, num_vls=2, queue_flits=4, max_packet_flits=3,
                       route_entries=2, ecmp_groups=2, ecmp_max_paths=2, counter_bits=8)
    return IngressHarness(IngressPort(cfg, mutant=mutant))


def formal_switch_cover(*, ports=2, mutant=None):
    """A small whole switch with every port and table input free, for the cover
    ``cover_all_ports_transmitting`` (every output sending in the same cycle: the solver
    must program routes, send packets through ingress, buffers and allocator)."""
    from ...config import SwitchConfig
    from .switch import Switch
    if mutant not in (None,):
        raise ValueError(f"unknown mutant {mutant!r}")
    cfg = SwitchConfig(ports=ports, num_vls=1, queue_flits=2, max_packet_flits=1,
                       route_entries=2, ecmp_groups=1, ecmp_max_paths=1, counter_bits=8)
    from ...verify.formal import FreeInputs
    return FreeInputs(Switch(cfg))
