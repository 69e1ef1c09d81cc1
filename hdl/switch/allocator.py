"""Allocators: turn a request matrix into a matching, once per clock.

Every allocator has the same interface (:func:`allocator_signature`), so a researcher can
swap in their own by registering it in :data:`ALLOCATORS`:

``request`` : In(ArrayLayout(num_outputs, num_inputs))
    ``request[i]`` is the set of outputs input ``i`` has a packet for (bit ``o``). The switch
    only raises requests from inputs and outputs that are free this cycle, so a packet that
    is being transferred keeps its input and output (packet-granular allocation) without
    the allocator knowing about packets.
``grant`` : Out(ArrayLayout(num_outputs, num_inputs))
    A matching, combinationally from ``request`` and the allocator state: every input has at
    most one grant bit, every output is granted to at most one input, and only requested
    pairs are granted. The switch registers the grants and starts the transfers in the next
    cycle; its requests already describe the inputs and outputs as they will be then (one
    finishing its packet now is free), so the allocator still decides every slot without a
    bubble.

The allocator state (round-robin pointers) advances at the clock edge of the cycle whose
grants it reports.
"""

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...config import MAX_ISLIP_ITERATIONS
from ...errors import ConfigError

__all__ = ["allocator_signature", "IslipAllocator", "FifoAllocator", "ALLOCATORS",
           "make_allocator", "round_robin_pick", "onehot_index", "matching_properties"]


def allocator_signature(num_inputs, num_outputs):
    """The members every allocator has (see the module docstring)."""
    matrix = data.ArrayLayout(unsigned(num_outputs), num_inputs)
    return {"request": In(matrix), "grant": Out(matrix)}


def _lowest_set(value, width):
    """One-hot of the lowest set bit of ``value`` (0 when none): v & -v."""
    return (value & (~value + 1))[:width]


def _named(m, value, width, name):
    """``value`` as a comb Signal: Amaranth expressions are trees, so a value used several
    times must be a Signal or its logic is generated once per use."""
    sig = Signal(width, name=name)
    m.d.comb += sig.eq(value)
    return sig


def round_robin_pick(m, requests, pointer, width, name="rr"):
    """One-hot of the first set bit of ``requests`` at or after index ``pointer``, wrapping."""
    requests = _named(m, requests, width, f"{name}_req")
    at_or_after = (Const((1 << width) - 1, width) << pointer)[:width]
    upper = _named(m, requests & at_or_after, width, f"{name}_upper")
    return _named(m, Mux(upper.any(), _lowest_set(upper, width), _lowest_set(requests, width)),
                  width, f"{name}_pick")


def onehot_index(onehot, width):
    """Index of the set bit of a one-hot value (0 when none)."""
    index = 0
    for bit in range(width):
        index = Mux(onehot[bit], bit, index)
    return index


def _column(matrix, output, num_inputs):
    """Bits ``matrix[i][output]`` for every input, as one value (bit i = input i)."""
    return Cat(*(matrix[i][output] for i in range(num_inputs)))


def matching_properties(m, request, grant, num_inputs, num_outputs, prefix=""):
    """Named assertions that ``grant`` is a matching within ``request`` (docs/switch.md)."""
    rows_ok, requested_ok, cols_ok = 1, 1, 1
    for i in range(num_inputs):
        row = grant[i]
        rows_ok = rows_ok & ((row & (row - 1))[:num_outputs] == 0)
        requested_ok = requested_ok & ((row & ~request[i]) == 0)
    for o in range(num_outputs):
        col = _column(grant, o, num_inputs)
        cols_ok = cols_ok & ((col & (col - 1))[:num_inputs] == 0)
    m.d.comb += [
        Assert(rows_ok, f"{prefix}input_granted_at_most_once"),
        Assert(cols_ok, f"{prefix}output_granted_at_most_once"),
        Assert(requested_ok, f"{prefix}only_requested_pairs_granted"),
    ]


class IslipAllocator(wiring.Component):
    """iSLIP (McKeown, IEEE/ACM ToN 1999) with ``iterations`` request-grant-accept rounds
    in one clock cycle.

    Each output grants the requesting (still unmatched) input at or after its grant pointer;
    each input accepts the granting output at or after its accept pointer. Pointers move one
    past the partner only for grants accepted in the first iteration, which desynchronizes
    the output pointers and avoids starvation. ``active_iterations`` (run time, default all)
    lets one build compare 1..``iterations`` iterations.

    ``mutant`` builds a deliberately broken variant for the formal mutant tests:
    ``accept_all`` (inputs accept every grant), ``grant_unrequested`` (outputs grant their
    pointer input even without a request), ``pointer_always_moves`` (the grant pointer moves
    even when the grant is not accepted, which can starve an input).
    """

    MUTANTS = ("accept_all", "grant_unrequested", "pointer_always_moves")

    def __init__(self, num_inputs, num_outputs=None, *, iterations=1, mutant=None):
        num_outputs = num_inputs if num_outputs is None else num_outputs
        if not 1 <= iterations <= MAX_ISLIP_ITERATIONS:
            raise ConfigError(f"iSLIP iterations must be 1..{MAX_ISLIP_ITERATIONS}, "
                              f"got {iterations}")
        if mutant not in (None, *self.MUTANTS):
            raise ConfigError(f"unknown IslipAllocator mutant {mutant!r}")
        self.num_inputs, self.num_outputs = num_inputs, num_outputs
        self.iterations = iterations
        self.mutant = mutant
        super().__init__({
            **allocator_signature(num_inputs, num_outputs),
            "active_iterations": In(range(1, iterations + 1), init=iterations),
        })

    def elaborate(self, platform):
        m = Module()
        n_in, n_out = self.num_inputs, self.num_outputs
        grant_ptr = [Signal(range(n_in), name=f"grant_ptr{o}") for o in range(n_out)]
        accept_ptr = [Signal(range(n_out), name=f"accept_ptr{i}") for i in range(n_in)]

        matched_in = Const(0, n_in)
        matched_out = Const(0, n_out)
        accepted = [Const(0, n_out) for _ in range(n_in)]   # accepted[i]: one-hot output
        for it in range(self.iterations):
            enabled = self.active_iterations > it
            # Grant: every unmatched output picks one unmatched requesting input.
            grants = []      # grants[o]: one-hot over inputs
            for o in range(n_out):
                requesters = _column(self.request, o, n_in) & ~matched_in
                pick = round_robin_pick(m, requesters, grant_ptr[o], n_in, f"grant_it{it}_out{o}")
                if self.mutant == "grant_unrequested":
                    pick = (Const(1, n_in) << grant_ptr[o])[:n_in]
                grants.append(_named(m, Mux(matched_out[o] | ~enabled, 0, pick), n_in,
                                     f"grants_it{it}_out{o}"))
            # Accept: every unmatched input picks one granting output.
            new_in, new_out = [], []
            for i in range(n_in):
                offers = Cat(*(grants[o][i] for o in range(n_out)))
                pick = round_robin_pick(m, offers, accept_ptr[i], n_out, f"accept_it{it}_in{i}")
                if self.mutant == "accept_all":
                    pick = offers
                take = _named(m, Mux(matched_in[i], 0, pick), n_out, f"take_it{it}_in{i}")
                if it == 0:
                    self._update_pointers(m, i, take, grants, grant_ptr, accept_ptr)
                accepted[i] = _named(m, accepted[i] | take, n_out, f"accepted_it{it}_in{i}")
                new_in.append(take.any())
                new_out.append(take)
            matched_in = _named(m, matched_in | Cat(*new_in), n_in, f"matched_in_it{it}")
            out_bits = matched_out
            for take in new_out:
                out_bits = out_bits | take
            matched_out = _named(m, out_bits, n_out, f"matched_out_it{it}")

        for i in range(n_in):
            m.d.comb += self.grant[i].eq(accepted[i])
        return m

    def _update_pointers(self, m, i, take, grants, grant_ptr, accept_ptr):
        n_in, n_out = self.num_inputs, self.num_outputs
        for o in range(n_out):
            with m.If(take[o]):
                m.d.sync += accept_ptr[i].eq((o + 1) % n_out)
        for o in range(n_out):
            moved = take[o] if self.mutant != "pointer_always_moves" else grants[o][i]
            with m.If(moved):
                m.d.sync += grant_ptr[o].eq((i + 1) % n_in)


class FifoAllocator(wiring.Component):
    """The allocator of the classical FIFO input-queued switch (Karol et al. 1987).

    With one FIFO per input only the head packet requests, so an input has (at most) one
    request and a single pass of per-output round-robin arbiters yields the matching. If
    several requests per input do appear (VOQ buffering, or several VLs), each input accepts
    its lowest-numbered granting output, which keeps the result a matching.
    """

    def __init__(self, num_inputs, num_outputs=None):
        num_outputs = num_inputs if num_outputs is None else num_outputs
        self.num_inputs, self.num_outputs = num_inputs, num_outputs
        super().__init__(allocator_signature(num_inputs, num_outputs))

    def elaborate(self, platform):
        m = Module()
        n_in, n_out = self.num_inputs, self.num_outputs
        pointer = [Signal(range(n_in), name=f"ptr{o}") for o in range(n_out)]
        grants = [round_robin_pick(m, _column(self.request, o, n_in), pointer[o], n_in,
                                   f"grant_out{o}") for o in range(n_out)]
        for i in range(n_in):
            offers = Cat(*(grants[o][i] for o in range(n_out)))
            take = _named(m, _lowest_set(offers, n_out), n_out, f"take_in{i}")
            m.d.comb += self.grant[i].eq(take)
            for o in range(n_out):
                with m.If(take[o]):
                    m.d.sync += pointer[o].eq((i + 1) % n_in)
        return m


#: Allocator name (SwitchConfig.allocator) -> factory(num_ports, cfg).
ALLOCATORS = {
    "islip": lambda n, cfg: IslipAllocator(n, iterations=cfg.islip_iterations),
    "fifo": lambda n, cfg: FifoAllocator(n),
}


def make_allocator(num_ports, cfg):
    return ALLOCATORS[cfg.allocator](num_ports, cfg)
