"""The host bridge: executes request frames on the CSR bus and answers them.

The format and every rule are in :mod:`ubproto.hdl.host.protocol`; this module implements
them in hardware, byte-serially (one byte per cycle in and out, which is the rate of every
transport it serves). :class:`~ubproto.hdl.host.protocol.BridgeModel` is the reference the
fuzz test compares it with.

How it works, and why:

* A request is stored whole in a request buffer while a small parser walks its commands
  on the fly. Nothing executes before the frame has ended and the transport has vouched
  for it (``error`` on the last byte), so a damaged or truncated frame never half-executes.
* The answer is built in a response buffer, header last, so its length is known before
  the first byte leaves (the UDP/IP headers need it) and the buffer doubles as the replay
  store for a retried sequence number.
* ``rx.ready`` is always 1: UART and Ethernet cannot wait. Bytes that arrive while the
  bridge is busy are dropped and counted per frame (``drops_busy``); hosts wait for each
  answer, so this only happens to retries that cross an answer or to junk.

Cycle costs: :func:`~ubproto.hdl.host.protocol.bridge_cycles` gives the exact count from the
last request byte to the first answer byte (1 to check the request, 7 per command, 6 per
read word, 8 per written word, 7 to finish), then the answer leaves at one byte per cycle.
``bridge.exec_cycles`` reports the count measured for the last request; a test checks it
against the formula, and docs/hil.md computes real-board rates from it.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...errors import ConfigError
from .csr import CsrBank, csr_signature
from .protocol import (COMMAND, DEFAULT_MAX_REQUEST, DEFAULT_MAX_RESPONSE, MAGIC, MAX_COMMANDS,
                       REQUEST_HEADER, RESPONSE_HEADER, VERSION, WORD_BYTES, Op, Status)
from .regmap import Block, Register
from .streams import byte_stream

__all__ = ["BridgeEngine", "bridge_block"]

_COUNTER_BITS = 32
_LENGTH_BITS = 16           # request length counter (saturates; far above any buffer)
_MAX_BUFFER = 1 << 15


def bridge_block(name="bridge"):
    """The bridge's own registers: counters and the limits a host must respect."""
    return Block(name, (
        Register("requests", "ro", "requests answered (executed or refused with a status)"),
        Register("replays", "ro", "retried sequence numbers answered from the stored answer"),
        Register("errors", "ro", "answers with a non-OK status"),
        Register("drops_malformed", "ro", "frames shorter than a header or with a bad magic"),
        Register("drops_transport", "ro", "frames the transport marked bad (FCS, framing)"),
        Register("drops_busy", "ro", "frames that arrived while the bridge was busy"),
        Register("exec_cycles", "ro", "cycles from the last request byte to the first "
                                      "answer byte, for the last request"),
        Register("max_request", "ro", "request buffer size in bytes", width=16),
        Register("max_response", "ro", "response buffer size in bytes", width=16),
    ), doc="host bridge status")


class BridgeEngine(wiring.Component):
    """Request/response engine (see the module docstring and ``protocol``).

    Members
    -------
    rx : In(byte_stream())    request frames (always ready)
    tx : Out(byte_stream())   answer frames
    tx_length : Out(16)       bytes of the answer being sent (valid while ``tx.valid``)
    bus : Out(csr_signature()) master port to the register map
    csr : In(csr_signature(...)) the bridge's own registers (:func:`bridge_block`)
    busy : Out(1)             not accepting a new request
    exec_cycles : Out(32)     the ``exec_cycles`` register (for simulation harnesses)
    """

    def __init__(self, *, max_request=DEFAULT_MAX_REQUEST, max_response=DEFAULT_MAX_RESPONSE,
                 block_name="bridge"):
        min_request = REQUEST_HEADER.nbytes + COMMAND.nbytes + WORD_BYTES
        min_response = RESPONSE_HEADER.nbytes + COMMAND.nbytes + WORD_BYTES
        for name, value, low in (("max_request", max_request, min_request),
                                 ("max_response", max_response, min_response)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not low <= value <= _MAX_BUFFER:
                self._MustUse__silence = True   # never elaborated: no "unused" warning
                raise ConfigError(f"bridge {name} must be an integer in {low}..{_MAX_BUFFER}, "
                                  f"got {value!r}")
        self.max_request = max_request
        self.max_response = max_response
        self.csr_block = bridge_block(block_name)
        super().__init__({
            "rx": In(byte_stream()),
            "tx": Out(byte_stream()),
            "tx_length": Out(_LENGTH_BITS),
            "bus": Out(csr_signature()),
            "csr": In(csr_signature(self.csr_block.span_bits)),
            "busy": Out(1),
            "exec_cycles": Out(_COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        max_req, max_resp = self.max_request, self.max_response

        m.submodules.req_mem = req_mem = Memory(shape=8, depth=max_req, init=[])
        m.submodules.resp_mem = resp_mem = Memory(shape=8, depth=max_resp, init=[])
        req_w = req_mem.write_port()
        req_r = req_mem.read_port(domain="sync")
        resp_w = resp_mem.write_port()
        resp_r = resp_mem.read_port(domain="sync")

        counters = {name: Signal(_COUNTER_BITS, name=name) for name in
                    ("requests", "replays", "errors", "drops_malformed", "drops_transport",
                     "drops_busy", "exec_cycles")}

        def bump(name):
            return counters[name].eq(counters[name] + 1)

        # --- receive: store and parse on the fly ------------------------------------------
        rx = self.rx.payload
        rx_len = Signal(_LENGTH_BITS)        # bytes of this frame so far (saturating)
        rx_error = Signal()                  # transport flag of the frame just ended
        magic_ok = Signal()
        seq = Signal(16)
        status = Signal(8)                   # first structural error (0 = none yet)
        phase = Signal(2)                    # byte of the current command header
        data_left = Signal(range(255 * WORD_BYTES + 1))
        is_write = Signal()
        ncmds = Signal(range(MAX_COMMANDS + 2))
        resp_need = Signal(20)               # answer bytes if every command completes
        discarding = Signal()                # dropping the rest of a frame
        receiving = Signal()                 # the FSM accepts a new request

        m.d.comb += self.rx.ready.eq(1)
        accept = Signal()
        m.d.comb += accept.eq(self.rx.valid & receiving & ~discarding)
        with m.If(self.rx.valid & ~accept):
            with m.If(rx.last):
                m.d.sync += [bump("drops_busy"), discarding.eq(0)]
            with m.Else():
                m.d.sync += discarding.eq(1)

        def set_status(code):
            with m.If(status == Status.OK):
                m.d.sync += status.eq(code)

        valid_op = Signal()
        m.d.comb += valid_op.eq(Cat(*(rx.data == op for op in Op)).any())
        op_writes = Signal()
        m.d.comb += op_writes.eq((rx.data == Op.WRITE) | (rx.data == Op.BURST_WRITE))
        words_bytes = Signal(range(255 * WORD_BYTES + 1))
        m.d.comb += words_bytes.eq(rx.data * WORD_BYTES)

        m.d.comb += [req_w.addr.eq(rx_len), req_w.data.eq(rx.data),
                     req_w.en.eq(accept & (rx_len < max_req))]
        with m.If(accept):
            with m.If(rx_len != (1 << _LENGTH_BITS) - 1):
                m.d.sync += rx_len.eq(rx_len + 1)
            with m.If(rx_len == 0):
                m.d.sync += magic_ok.eq(rx.data == MAGIC)
            with m.Elif(rx_len == 1):
                with m.If(rx.data[4:] != VERSION):
                    set_status(Status.ERR_VERSION)
            with m.Elif(rx_len == 2):
                m.d.sync += seq[8:].eq(rx.data)
            with m.Elif(rx_len == 3):
                m.d.sync += seq[:8].eq(rx.data)
            with m.Elif(rx_len < max_req):
                with m.If(data_left != 0):
                    m.d.sync += data_left.eq(data_left - 1)
                with m.Elif(phase == 0):
                    m.d.sync += [phase.eq(1), is_write.eq(op_writes)]
                    with m.If(~valid_op):
                        set_status(Status.ERR_OP)
                with m.Elif(phase == 1):
                    m.d.sync += [phase.eq(2), ncmds.eq(ncmds + 1)]
                    m.d.sync += data_left.eq(Mux(is_write, words_bytes, 0))
                    need = resp_need + COMMAND.nbytes + Mux(is_write, 0, words_bytes)
                    m.d.sync += resp_need.eq(need)
                    with m.If((rx.data == 0) | (ncmds == MAX_COMMANDS)):
                        set_status(Status.ERR_LENGTH)
                    with m.Elif(need > max_resp):
                        set_status(Status.ERR_TOO_LONG)
                with m.Else():
                    m.d.sync += phase.eq(phase + 1)  # address bytes; wraps to 0
            with m.Elif(rx_len == max_req):
                set_status(Status.ERR_TOO_LONG)
            with m.If(rx.last):
                m.d.sync += rx_error.eq(rx.error)

        # --- execute and answer ------------------------------------------------------------
        req_len = Signal(_LENGTH_BITS)
        exec_seq = Signal(16)
        last_seq = Signal(16)
        have_last = Signal()
        rd_pos = Signal(range(max_req + 1))
        resp_wr = Signal(range(max_resp + 1))
        resp_len = Signal(range(max_resp + 1))
        cmd_start = Signal(range(max_resp + 1))
        final = Signal(8)                    # status of the answer being built
        done = Signal(8)
        k = Signal(3)                        # byte counter inside a state
        hdr = Signal(32)                     # command header: op | count | addr
        word = Signal(32)
        cur_addr = Signal(16)
        left = Signal(8)                     # words left in this command
        burst = Signal()
        writing = Signal()
        exec_count = Signal(_COUNTER_BITS)
        send_pos = Signal(range(max_resp + 1))
        tx_last = Signal()

        m.d.comb += [req_r.addr.eq(rd_pos), req_r.en.eq(1)]

        def resp_write(addr, value):
            m.d.comb += [resp_w.addr.eq(addr), resp_w.data.eq(value), resp_w.en.eq(1)]

        def reset_parser():
            m.d.sync += [rx_len.eq(0), status.eq(Status.OK), phase.eq(0), data_left.eq(0),
                         ncmds.eq(0), resp_need.eq(RESPONSE_HEADER.nbytes), magic_ok.eq(0)]

        with m.If(~receiving):
            m.d.sync += exec_count.eq(exec_count + 1)
        m.d.comb += self.busy.eq(~receiving)

        resp_head = [MAGIC, VERSION << 4, exec_seq[8:], exec_seq[:8], final, done]

        with m.FSM(init="RECEIVE"):
            with m.State("RECEIVE"):
                m.d.comb += receiving.eq(1)
                with m.If(accept & rx.last):
                    m.next = "CHECK"

            with m.State("CHECK"):
                reset_parser()
                m.d.sync += [req_len.eq(rx_len), exec_seq.eq(seq), exec_count.eq(1), k.eq(0),
                             rd_pos.eq(REQUEST_HEADER.nbytes), done.eq(0),
                             resp_wr.eq(RESPONSE_HEADER.nbytes),
                             cmd_start.eq(RESPONSE_HEADER.nbytes)]
                at_boundary = (phase == 0) & (data_left == 0)
                with m.If(rx_error):
                    m.d.sync += bump("drops_transport")
                    m.next = "RECEIVE"
                with m.Elif((rx_len < REQUEST_HEADER.nbytes) | ~magic_ok):
                    m.d.sync += bump("drops_malformed")
                    m.next = "RECEIVE"
                with m.Elif(have_last & (seq == last_seq)):
                    m.d.sync += bump("replays")
                    m.next = "SEND"
                with m.Else():
                    m.d.sync += [bump("requests"), last_seq.eq(seq), have_last.eq(1)]
                    final_status = Mux(status != Status.OK, status,
                                       Mux(at_boundary, Status.OK, Status.ERR_LENGTH))
                    m.d.sync += final.eq(final_status)
                    with m.If(final_status != Status.OK):
                        m.d.sync += bump("errors")
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "NEXT"

            with m.State("NEXT"):
                m.d.sync += [k.eq(0), cmd_start.eq(resp_wr)]
                with m.If(rd_pos == req_len):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "HEADER"

            with m.State("HEADER"):
                # rd_pos is presented to the buffer; its byte arrives a cycle later.
                with m.If(k != 0):
                    m.d.sync += [hdr.eq(Cat(req_r.data, hdr[:24])), resp_wr.eq(resp_wr + 1)]
                    resp_write(resp_wr, req_r.data)
                with m.If(k == COMMAND.nbytes):
                    m.next = "DISPATCH"
                with m.Else():
                    m.d.sync += [rd_pos.eq(rd_pos + 1), k.eq(k + 1)]

            with m.State("DISPATCH"):
                op = hdr[24:]
                m.d.sync += [cur_addr.eq(hdr[:16]), left.eq(hdr[16:24]), k.eq(0),
                             burst.eq((op == Op.BURST_READ) | (op == Op.BURST_WRITE)),
                             writing.eq((op == Op.WRITE) | (op == Op.BURST_WRITE))]
                with m.If((op == Op.WRITE) | (op == Op.BURST_WRITE)):
                    m.next = "WRITE_FETCH"
                with m.Else():
                    m.next = "READ_ISSUE"

            with m.State("READ_ISSUE"):
                m.d.comb += [self.bus.addr.eq(cur_addr), self.bus.r_stb.eq(1)]
                m.next = "READ_WAIT"

            with m.State("READ_WAIT"):
                with m.If(self.bus.err):
                    m.d.sync += [resp_wr.eq(cmd_start), final.eq(Status.ERR_ADDRESS),
                                 bump("errors"), k.eq(0)]
                    m.next = "FINISH"
                with m.Else():
                    resp_write(resp_wr, self.bus.r_data[24:])
                    m.d.sync += [word.eq(self.bus.r_data << 8), resp_wr.eq(resp_wr + 1),
                                 k.eq(1)]
                    m.next = "READ_BYTES"

            with m.State("READ_BYTES"):
                resp_write(resp_wr, word[24:])
                m.d.sync += [word.eq(word << 8), resp_wr.eq(resp_wr + 1), k.eq(k + 1)]
                with m.If(k == WORD_BYTES - 1):
                    m.next = "WORD_DONE"

            with m.State("WRITE_FETCH"):
                with m.If(k != 0):
                    m.d.sync += word.eq(Cat(req_r.data, word[:24]))
                with m.If(k == WORD_BYTES):
                    m.next = "WRITE_STROBE"
                with m.Else():
                    m.d.sync += [rd_pos.eq(rd_pos + 1), k.eq(k + 1)]

            with m.State("WRITE_STROBE"):
                m.d.comb += [self.bus.addr.eq(cur_addr), self.bus.w_stb.eq(1),
                             self.bus.w_data.eq(word)]
                m.next = "WRITE_WAIT"

            with m.State("WRITE_WAIT"):
                with m.If(self.bus.err):
                    m.d.sync += [resp_wr.eq(cmd_start), final.eq(Status.ERR_ADDRESS),
                                 bump("errors"), k.eq(0)]
                    m.next = "FINISH"
                with m.Else():
                    m.next = "WORD_DONE"

            with m.State("WORD_DONE"):
                # Shared tail of a read or write word: next word, or the command is done.
                m.d.sync += [left.eq(left - 1), cur_addr.eq(cur_addr + burst), k.eq(0)]
                with m.If(left == 1):
                    m.d.sync += done.eq(done + 1)
                    m.next = "NEXT"
                with m.Elif(writing):
                    m.next = "WRITE_FETCH"
                with m.Else():
                    m.next = "READ_ISSUE"

            with m.State("FINISH"):
                with m.Switch(k):
                    for i, value in enumerate(resp_head):
                        with m.Case(i):
                            resp_write(i, value)
                m.d.sync += k.eq(k + 1)
                with m.If(k == RESPONSE_HEADER.nbytes - 1):
                    m.d.sync += [resp_len.eq(resp_wr), k.eq(0)]
                    m.next = "SEND"

            with m.State("SEND"):
                advance = Signal()
                m.d.comb += [advance.eq(~self.tx.valid | self.tx.ready),
                             resp_r.addr.eq(send_pos), resp_r.en.eq(advance)]
                with m.If(~self.tx.valid & (send_pos == 0)):
                    m.d.sync += counters["exec_cycles"].eq(exec_count)
                with m.If(advance):
                    with m.If(send_pos != resp_len):
                        m.d.sync += [self.tx.valid.eq(1), tx_last.eq(send_pos == resp_len - 1),
                                     send_pos.eq(send_pos + 1)]
                    with m.Else():
                        m.d.sync += [self.tx.valid.eq(0), send_pos.eq(0)]
                        m.next = "RECEIVE"

        m.d.comb += [self.tx.payload.data.eq(resp_r.data), self.tx.payload.last.eq(tx_last),
                     self.tx.payload.error.eq(0), self.tx_length.eq(resp_len)]

        # --- the bridge's own registers -----------------------------------------------------
        m.submodules.bank = bank = CsrBank(self.csr_block)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        for name, signal in counters.items():
            m.d.comb += getattr(bank, name).eq(signal)
        m.d.comb += self.exec_cycles.eq(counters["exec_cycles"])
        m.d.comb += [bank.max_request.eq(Const(max_req, 16)),
                     bank.max_response.eq(Const(max_resp, 16))]
        return m
