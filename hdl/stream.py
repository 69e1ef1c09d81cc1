"""The packet stream: one definition of the word every packet datapath carries.

A packet is a sequence of words of :data:`WORD_BYTES` bytes (one flit) on an
:mod:`amaranth.lib.stream`. ``first`` marks the first word of a packet, ``last`` its final
word, and ``nbytes`` says how many leading bytes of the final word are valid (it is
``WORD_BYTES`` on every other word). Wire byte 0 is the most significant byte of ``data``,
the same convention as the header layouts, so a header is a plain slice of the first word.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, stream

from .proto.formats import FLIT_BYTES

__all__ = ["WORD_BYTES", "WORD_BITS", "PacketWord", "packet_stream", "word_to_bytes",
           "bytes_to_words"]

WORD_BYTES = FLIT_BYTES
WORD_BITS = 8 * WORD_BYTES

#: The payload of every packet stream.
PacketWord = data.StructLayout({
    "data": unsigned(WORD_BITS),
    "nbytes": unsigned(WORD_BYTES.bit_length()),
    "first": unsigned(1),
    "last": unsigned(1),
})


def packet_stream(**kwargs):
    """``stream.Signature`` of a packet stream (keyword arguments go to the Signature)."""
    return stream.Signature(PacketWord, **kwargs)


def word_to_bytes(word, nbytes=WORD_BYTES):
    """Python: the first ``nbytes`` wire bytes of an integer ``data`` word."""
    return word.to_bytes(WORD_BYTES, "big")[:nbytes]


def bytes_to_words(payload):
    """Python: split ``payload`` into ``(data, nbytes, first, last)`` tuples."""
    if not payload:
        raise ValueError("a packet has at least one byte")
    words = []
    for pos in range(0, len(payload), WORD_BYTES):
        chunk = payload[pos:pos + WORD_BYTES]
        words.append((int.from_bytes(chunk.ljust(WORD_BYTES, b"\0"), "big"), len(chunk),
                      pos == 0, pos + WORD_BYTES >= len(payload)))
    return words
