"""The byte-frame stream every host-bridge transport speaks.

Transports (SLIP over UART, Ethernet) deliver and accept frames one byte per transfer.
``last`` marks the final byte of a frame; ``error`` (meaningful on the final byte) says the
transport found the frame damaged (bad FCS, broken SLIP escape, UART framing error), so the
receiver drops and counts it instead of acting on it. A transport that discovers an error
after the last data byte has passed emits one extra byte with ``last`` and ``error`` set.
"""

from amaranth.lib import data, stream

__all__ = ["ByteFrame", "byte_stream", "RX_BYTE"]

ByteFrame = data.StructLayout({
    "data": 8,
    "last": 1,
    "error": 1,
})


def byte_stream(**kwargs):
    return stream.Signature(ByteFrame, **kwargs)


#: One byte from a serial receiver; ``error``: the UART saw a framing error.
RX_BYTE = data.StructLayout({"data": 8, "error": 1})
