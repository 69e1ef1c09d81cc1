"""The host-bridge request/response format, defined once, and its executable reference.

The same bytes travel over every transport (SLIP-framed UART, raw EtherType, UDP); the
transport only delimits frames. The headers are :class:`~ubproto.hdl.proto.formats.Header`
data like every other format, so the hardware engine, the host library and
:class:`BridgeModel` (the reference the hardware is checked against, byte for byte) agree by
construction.

Request frame::

    RequestHeader (4 bytes): magic | version | rsv | seq
    Command * n   (4 bytes): op | count | addr   [+ count * 4 data bytes for writes]

Response frame::

    ResponseHeader (6 bytes): magic | version | rsv | seq | status | done
    for each completed command: the command echoed (4 bytes) [+ count * 4 bytes for reads]

Rules (the hardware implements exactly these; :class:`BridgeModel` is their definition):

* Ops: READ / WRITE repeat ``count`` accesses at one address (a FIFO port); BURST_READ /
  BURST_WRITE walk ``count`` consecutive addresses. ``count`` is 1..255 words.
* A frame shorter than the request header, or with a wrong magic byte, is not for the
  bridge: it is dropped and counted (``drops_malformed``), with no response (there is no
  sequence number to answer to). A frame the transport marked bad (FCS, framing) is dropped
  and counted (``drops_transport``). A frame arriving while the bridge is executing or
  answering is dropped and counted (``drops_busy``); hosts wait for each answer.
* Idempotent retries: a request whose ``seq`` equals that of the last answered request gets
  the stored answer again, without executing anything (``replays``). Hosts start their
  sequence at a random value and increment it per request.
* Structural errors execute nothing and answer with ``done = 0``: wrong version
  (ERR_VERSION), an unknown op (ERR_OP), ``count == 0``, more than 255 commands, or a frame
  that ends inside a command (ERR_LENGTH), a request longer than the request buffer or an
  answer that would not fit the response buffer (ERR_TOO_LONG). The first error in byte
  order wins.
* Execution runs the commands in order. An access that hits no register (or writes a
  read-only one) stops the frame with ERR_ADDRESS; ``done`` says how many commands
  completed and the answer holds only those. Words of the failing command before the bad
  address were already written (a burst write) -- the answer says which command failed.
"""

import struct
from dataclasses import dataclass
from enum import IntEnum

from ..proto.formats import Field, Header

__all__ = ["REQUEST_HEADER", "COMMAND", "RESPONSE_HEADER", "Op", "Status", "MAGIC", "VERSION",
           "MAX_COUNT", "MAX_COMMANDS", "WORD_BYTES", "Command", "Response", "encode_request",
           "decode_response", "response_size", "BridgeModel", "DEFAULT_MAX_REQUEST",
           "DEFAULT_MAX_RESPONSE", "BRIDGE_UDP_PORT", "BRIDGE_ETHERTYPE", "ProtocolError",
           "bridge_cycles", "CYCLES", "FAILED_WORD_CYCLES", "HEADER_CYCLES",
           "REQUEST_BYTES", "COMMAND_BYTES", "RESPONSE_BYTES", "encode_response_header"]

#: First byte of every request and response.
MAGIC = 0xB5
#: Protocol version in this profile.
VERSION = 1
#: Bytes per CSR word on the wire (big-endian).
WORD_BYTES = 4
#: Largest ``count`` of one command (8-bit field).
MAX_COUNT = 255
#: Largest number of commands in one frame (``done`` is 8 bits).
MAX_COMMANDS = 255
#: Buffer sizes of the default engine. The response limit keeps an answer inside one UDP
#: datagram of a standard 1500-byte MTU (1500 - 20 IPv4 - 8 UDP).
DEFAULT_MAX_REQUEST = 1024
DEFAULT_MAX_RESPONSE = 1472
#: UDP port the bridge listens on (assumption: an unassigned port next to UBoE's 4792).
BRIDGE_UDP_PORT = 4793
#: EtherType of raw bridge frames (IEEE 802 "local experimental 1").
BRIDGE_ETHERTYPE = 0x88B5

REQUEST_HEADER = Header("BridgeRequest", (
    Field("magic", 8, "always MAGIC", fixed=MAGIC, source="assumption"),
    Field("version", 4, "protocol version", source="assumption"),
    Field("rsv", 4, reserved=True, source="assumption"),
    Field("seq", 16, "sequence number; a repeat of the last one replays its answer",
          source="assumption"),
), doc="Host bridge request header.", source="assumption")

COMMAND = Header("BridgeCommand", (
    Field("op", 8, "see Op", source="assumption"),
    Field("count", 8, "words, 1..255", source="assumption"),
    Field("addr", 16, "first word address", source="assumption"),
), doc="One command inside a request (echoed in the response).", source="assumption")

RESPONSE_HEADER = Header("BridgeResponse", (
    Field("magic", 8, fixed=MAGIC, source="assumption"),
    Field("version", 4, source="assumption"),
    Field("rsv", 4, reserved=True, source="assumption"),
    Field("seq", 16, "sequence number of the request answered", source="assumption"),
    Field("status", 8, "see Status", source="assumption"),
    Field("done", 8, "commands completed", source="assumption"),
), doc="Host bridge response header.", source="assumption")


# Byte sizes of the headers, computed once (Header.nbytes sums its fields on every call).
REQUEST_BYTES = REQUEST_HEADER.nbytes
COMMAND_BYTES = COMMAND.nbytes
RESPONSE_BYTES = RESPONSE_HEADER.nbytes

# The fast path packs the byte-aligned headers with struct; test_host_regmap checks that it
# produces exactly what the Header definitions above do.
_REQUEST_STRUCT = struct.Struct(">BBH")       # magic | version:rsv | seq
_COMMAND_STRUCT = struct.Struct(">BBH")       # op | count | addr
_RESPONSE_STRUCT = struct.Struct(">BBHBB")    # magic | version:rsv | seq | status | done
_VERSION_SHIFT = REQUEST_HEADER.lsb("version") - 8 * (REQUEST_BYTES - 2)


class Op(IntEnum):
    READ = 1
    WRITE = 2
    BURST_READ = 3
    BURST_WRITE = 4

    @property
    def is_write(self):
        return self in (Op.WRITE, Op.BURST_WRITE)

    @property
    def is_burst(self):
        return self in (Op.BURST_READ, Op.BURST_WRITE)


class Status(IntEnum):
    OK = 0
    ERR_VERSION = 1
    ERR_OP = 2
    ERR_LENGTH = 3
    ERR_TOO_LONG = 4
    ERR_ADDRESS = 5


#: Engine cycles per step (see :func:`bridge_cycles`; the hardware test checks them).
CYCLES = {
    "check": 1,          # decide drop / replay / refuse / execute
    "command": 7,        # next-command check, 5 header cycles, dispatch
    "read_word": 6,      # strobe, answer, 3 more bytes into the answer, next word
    "write_word": 8,     # 5 cycles to fetch the word, strobe, answer, next word
    "finish": 7,         # end-of-request check, 6 answer-header bytes
}


#: Cycles a word costs when its access fails (strobe + answer for a read; fetch, strobe and
#: answer for a write); the frame then goes straight to the answer header.
FAILED_WORD_CYCLES = {False: 2, True: 7}
#: Writing the answer header (``finish`` without the end-of-request check).
HEADER_CYCLES = 6


def bridge_cycles(commands=()):
    """Cycles from a request's last byte to its answer's first byte when every command
    completes (what ``bridge.exec_cycles`` reads afterwards)."""
    total = CYCLES["check"] + CYCLES["finish"]
    for c in commands:
        per_word = CYCLES["write_word"] if Op(c.op).is_write else CYCLES["read_word"]
        total += CYCLES["command"] + per_word * c.count
    return total


class ProtocolError(Exception):
    """A response that does not answer the request (host side)."""


@dataclass(frozen=True)
class Command:
    op: Op
    addr: int
    count: int = 1
    data: tuple = ()     # words to write

    def encode(self):
        if not (0 <= self.count <= MAX_COUNT and 0 <= self.addr < 1 << 16):
            raise ValueError(f"command count {self.count} or address {self.addr} out of range")
        head = _COMMAND_STRUCT.pack(int(self.op), self.count, self.addr)
        return head + b"".join(w.to_bytes(WORD_BYTES, "big") for w in self.data)


@dataclass
class Response:
    seq: int
    status: Status
    done: int
    #: One entry per completed command: (op, addr, count, [words] for reads, else None).
    results: list


def encode_request(seq, commands, *, version=VERSION):
    return _REQUEST_STRUCT.pack(MAGIC, version << _VERSION_SHIFT, seq) + b"".join(
        c.encode() for c in commands)


def encode_response_header(seq, status, done):
    return _RESPONSE_STRUCT.pack(MAGIC, VERSION << _VERSION_SHIFT, seq, status, done)


def response_size(commands):
    """Bytes of the answer to ``commands`` when all complete."""
    return RESPONSE_BYTES + sum(
        COMMAND_BYTES + (0 if Op(c.op).is_write else c.count * WORD_BYTES) for c in commands)


def decode_response(frame):
    """Parse a response frame; :class:`ProtocolError` if it is not one."""
    if len(frame) < RESPONSE_BYTES:
        raise ProtocolError(f"response of {len(frame)} bytes is shorter than its header")
    magic, _, seq, status_code, done = _RESPONSE_STRUCT.unpack_from(frame)
    if magic != MAGIC:
        raise ProtocolError(f"response magic 0x{magic:02x} is not 0x{MAGIC:02x}")
    try:
        status = Status(status_code)
    except ValueError:
        raise ProtocolError(f"unknown response status {status_code}") from None
    pos, results = RESPONSE_BYTES, []
    for _ in range(done):
        if pos + COMMAND_BYTES > len(frame):
            raise ProtocolError("response ends inside a command echo")
        op_code, count, addr = _COMMAND_STRUCT.unpack_from(frame, pos)
        pos += COMMAND_BYTES
        try:
            op = Op(op_code)
        except ValueError:
            raise ProtocolError(f"response echoes unknown op {op_code}") from None
        words = None
        if not op.is_write:
            end = pos + count * WORD_BYTES
            if end > len(frame):
                raise ProtocolError("response ends inside read data")
            words = list(struct.unpack_from(f">{count}I", frame, pos))
            pos = end
        results.append((op, addr, count, words))
    if pos != len(frame):
        raise ProtocolError(f"response has {len(frame) - pos} bytes after its last command")
    return Response(seq, status, done, results)


class BridgeModel:
    """The bridge's behaviour, byte for byte: ``answer(frame) -> bytes | None``.

    ``space`` provides ``read(addr) -> int`` and ``write(addr, value)``, raising ``KeyError``
    for an address with no register (or a write to a read-only one). Counters mirror the
    hardware's (same names as the ``bridge`` CSR block).
    """

    COUNTERS = ("requests", "replays", "errors", "drops_malformed", "drops_transport",
                "drops_busy")

    def __init__(self, space, *, max_request=DEFAULT_MAX_REQUEST,
                 max_response=DEFAULT_MAX_RESPONSE):
        self.space = space
        self.max_request = max_request
        self.max_response = max_response
        self.last_seq = None
        self.last_answer = None
        self.counters = dict.fromkeys(self.COUNTERS, 0)
        self._cycles = 0
        #: Engine cycles of the last answered request (the hardware's ``exec_cycles``).
        self.exec_cycles = 0

    def answer(self, frame, *, transport_error=False):
        frame = bytes(frame)
        if transport_error:
            self.counters["drops_transport"] += 1
            return None
        if len(frame) < REQUEST_BYTES or frame[0] != MAGIC:
            self.counters["drops_malformed"] += 1
            return None
        _, version_byte, seq = _REQUEST_STRUCT.unpack_from(frame)
        head = {"seq": seq, "version": version_byte >> _VERSION_SHIFT}
        if self.last_answer is not None and seq == self.last_seq:
            self.counters["replays"] += 1
            self.exec_cycles = CYCLES["check"]
            return self.last_answer
        # Counted before executing, as the hardware does: a request that reads the bridge's
        # own counters sees itself in ``requests`` and the previous one in ``exec_cycles``.
        self.counters["requests"] += 1
        status = self._check_structure(frame, head)
        body, done = b"", 0
        self._cycles = CYCLES["check"] + HEADER_CYCLES
        if status == Status.OK:
            status, body, done = self._execute(frame)
        answer = encode_response_header(seq, status, done) + body
        if status != Status.OK:
            self.counters["errors"] += 1
        self.exec_cycles = self._cycles
        self.last_seq, self.last_answer = seq, answer
        return answer

    def attach(self, space, block="bridge"):
        """Serve the ``bridge`` block of ``space`` from this model's counters."""
        for name in self.COUNTERS:
            space.on_read(f"{block}.{name}", lambda i, name=name: self.counters[name])
        space.on_read(f"{block}.exec_cycles", lambda i: self.exec_cycles)
        space.on_read(f"{block}.max_request", lambda i: self.max_request)
        space.on_read(f"{block}.max_response", lambda i: self.max_response)

    def _check_structure(self, frame, head):
        """The first structural error in byte order, walking the frame as the hardware does."""
        pos, ncmds = REQUEST_BYTES, 0
        resp = RESPONSE_BYTES
        if head["version"] != VERSION:
            return Status.ERR_VERSION
        limit = min(len(frame), self.max_request)
        while pos < limit:
            # A command header: op at pos, count at pos + 1.
            op = frame[pos]
            if op not in Op._value2member_map_:
                return Status.ERR_OP
            if pos + 1 >= limit:
                break
            count = frame[pos + 1]
            ncmds += 1
            if count == 0 or ncmds > MAX_COMMANDS:
                return Status.ERR_LENGTH
            resp += COMMAND_BYTES + (0 if Op(op).is_write else count * WORD_BYTES)
            if resp > self.max_response:
                return Status.ERR_TOO_LONG
            pos += COMMAND_BYTES + (count * WORD_BYTES if Op(op).is_write else 0)
        if len(frame) > self.max_request:
            return Status.ERR_TOO_LONG
        if pos != len(frame):
            return Status.ERR_LENGTH
        return Status.OK

    def _execute(self, frame):
        pos, body, done = REQUEST_BYTES, bytearray(), 0
        while pos < len(frame):
            op_code, count, addr = _COMMAND_STRUCT.unpack_from(frame, pos)
            op = Op(op_code)
            echo = frame[pos:pos + COMMAND_BYTES]
            pos += COMMAND_BYTES
            words = bytearray()
            self._cycles += CYCLES["command"]
            per_word = CYCLES["write_word" if op.is_write else "read_word"]
            try:
                for i in range(count):
                    a = (addr + i) & 0xFFFF if op.is_burst else addr
                    if op.is_write:
                        value = int.from_bytes(frame[pos:pos + WORD_BYTES], "big")
                        pos += WORD_BYTES
                        self.space.write(a, value)
                    else:
                        words += self.space.read(a).to_bytes(WORD_BYTES, "big")
                    self._cycles += per_word
            except KeyError:
                self._cycles += FAILED_WORD_CYCLES[op.is_write]
                return Status.ERR_ADDRESS, bytes(body), done
            body += echo + words
            done += 1
        self._cycles += CYCLES["finish"] - HEADER_CYCLES
        return Status.OK, bytes(body), done
