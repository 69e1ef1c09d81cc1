"""The register protocol, host side: sequence numbers, retries, batching, answer checks.

:class:`BridgeClient` turns lists of :class:`~ubproto.hdl.host.protocol.Command` into
request frames, sends them through a transport and checks every answer against the
request (sequence number, echoed commands, word counts). A lost request or answer is sent
again with the *same* sequence number: the bridge answers a repeat from its stored answer
without executing anything twice, so retries are safe even for writes with side effects.

:meth:`BridgeClient.run` splits a long command list into as few frames as the board's
buffers allow (their sizes are read from the ``bridge`` block once), so that reading a
hundred counters is one round trip.
"""

import random

from ...errors import UbprotoError
from ...hdl.host.protocol import (COMMAND_BYTES, DEFAULT_MAX_REQUEST, DEFAULT_MAX_RESPONSE,
                                  MAX_COMMANDS, MAX_COUNT, REQUEST_BYTES, RESPONSE_BYTES,
                                  WORD_BYTES, Command, Op, ProtocolError, Status,
                                  decode_response, encode_request)

__all__ = ["BridgeClient", "BridgeError", "NoAnswer", "DEFAULT_RETRIES"]

#: Attempts after the first before a request is given up.
DEFAULT_RETRIES = 4
#: Each retry waits this much longer than the one before.
BACKOFF = 2.0


class BridgeError(UbprotoError):
    """The board answered with an error status."""

    def __init__(self, status, done, message):
        self.status = status
        self.done = done
        super().__init__(message)


class NoAnswer(UbprotoError):
    """The board did not answer, even after retries."""


class BridgeClient:
    def __init__(self, transport, *, retries=DEFAULT_RETRIES, seed=None,
                 max_request=DEFAULT_MAX_REQUEST, max_response=DEFAULT_MAX_RESPONSE):
        self.transport = transport
        self.retries = retries
        # A random start makes a stale answer stored by the board (from an earlier session)
        # unlikely to match our first sequence number.
        # A replayed recording dictates its sequence numbers (see ReplayTransport).
        initial = getattr(transport, "initial_seq", None)
        self.seq = initial if initial is not None else random.Random(seed).randrange(1 << 16)
        self.max_request = max_request
        self.max_response = max_response
        self.stats = {"requests": 0, "retries": 0, "frames_out": 0, "bytes_out": 0,
                      "bytes_in": 0}

    def set_limits(self, max_request, max_response):
        self.max_request, self.max_response = max_request, max_response

    # -- one frame ------------------------------------------------------------------------

    def transact(self, commands):
        """Send ``commands`` as one frame; return the decoded answer (status may be an error)."""
        self.seq = (self.seq + 1) & 0xFFFF
        frame = encode_request(self.seq, commands)
        timeout = self.transport.timeout
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            self.stats["frames_out"] += 1
            self.stats["bytes_out"] += len(frame)
            answer = self.transport.exchange(frame, timeout)
            if answer is not None:
                self.stats["bytes_in"] += len(answer)
                try:
                    response = decode_response(answer)
                except ProtocolError:
                    continue   # damaged or foreign frame: ask again
                if response.seq != self.seq:
                    continue   # a late answer to an earlier attempt of another request
                self.stats["requests"] += 1
                self._check_echo(commands, response)
                return response
            timeout *= BACKOFF
        raise NoAnswer(f"no answer from {self.transport.name} after {self.retries + 1} "
                       f"attempts (seq {self.seq})")

    @staticmethod
    def _check_echo(commands, response):
        for cmd, (op, addr, count, words) in zip(commands, response.results):
            if (op, addr, count) != (Op(cmd.op), cmd.addr, cmd.count):
                raise ProtocolError(f"answer echoes {op.name} {count}@0x{addr:04x}, request "
                                    f"had {Op(cmd.op).name} {cmd.count}@0x{cmd.addr:04x}")

    # -- many commands ----------------------------------------------------------------------

    def run(self, commands, *, describe=None):
        """Execute ``commands`` in order in as few frames as fit.

        Returns one list of words per read command (in order; a command split over frames is
        joined again). Raises :class:`BridgeError` on an error status.
        """
        words_of = {}
        for batch in self._batches(commands):
            response = self.transact([cmd for _, cmd in batch])
            if response.status != Status.OK:
                failed = batch[response.done][1] if response.done < len(batch) else None
                what = describe(failed) if (describe and failed) else (
                    f"{Op(failed.op).name} 0x{failed.addr:04x}" if failed else "request")
                raise BridgeError(response.status, response.done,
                                  f"board refused {what}: {response.status.name}")
            for (index, _), (_, _, _, words) in zip(batch, response.results):
                if words is not None:
                    words_of.setdefault(index, []).extend(words)
        return [words_of[i] for i in sorted(words_of)]

    def _batches(self, commands):
        batch, req, resp = [], REQUEST_BYTES, RESPONSE_BYTES
        for index, cmd in self._split_counts(commands):
            creq = COMMAND_BYTES + (cmd.count * WORD_BYTES if Op(cmd.op).is_write else 0)
            cresp = COMMAND_BYTES + (0 if Op(cmd.op).is_write else cmd.count * WORD_BYTES)
            if batch and (req + creq > self.max_request or resp + cresp > self.max_response
                          or len(batch) == MAX_COMMANDS):
                yield batch
                batch, req, resp = [], REQUEST_BYTES, RESPONSE_BYTES
            batch.append((index, cmd))
            req += creq
            resp += cresp
        if batch:
            yield batch

    def _split_counts(self, commands):
        """``(index, command)`` with commands longer than one frame or than ``count``
        allows split into pieces."""
        word_room = min(MAX_COUNT,
                        (self.max_request - REQUEST_BYTES - COMMAND_BYTES) // WORD_BYTES,
                        (self.max_response - RESPONSE_BYTES - COMMAND_BYTES) // WORD_BYTES)
        for index, cmd in enumerate(commands):
            op = Op(cmd.op)
            for start in range(0, cmd.count, word_room):
                n = min(word_room, cmd.count - start)
                addr = (cmd.addr + start) & 0xFFFF if op.is_burst else cmd.addr
                data = tuple(cmd.data[start:start + n]) if op.is_write else ()
                yield index, Command(op, addr, n, data)
