"""Amaranth layouts derived from :mod:`.formats`.

Amaranth's :class:`~amaranth.lib.data.StructLayout` places its first field at the least
significant bit; our headers list fields in wire order, MSB first. Reversing the field list
gives a layout whose bit pattern equals the big-endian header word, so a header view over a
flit slice (wire byte 0 = most significant byte of the flit) needs no byte swapping.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data

from .formats import CCI_VARIANTS, CONTROL_BODIES, FLIT_BYTES, HEADERS, Header, CciMode

__all__ = ["struct_layout", "LAYOUTS", "header_slice", "header_view", "CCI_LAYOUT"]


def struct_layout(header: Header) -> data.StructLayout:
    """The StructLayout whose value equals ``header``'s big-endian word."""
    return data.StructLayout({f.name: unsigned(f.width) for f in reversed(header.fields)})


#: Every header's layout by header name.
LAYOUTS = {name: struct_layout(h) for name, h in HEADERS.items()}

#: CCI as a union of its variants (each variant carries the mode bits in the same place).
CCI_LAYOUT = data.UnionLayout({CciMode(mode).name.lower(): struct_layout(h)
                               for mode, h in CCI_VARIANTS.items()})


def header_slice(flit, header: Header, byte_offset=0):
    """Bits of ``flit`` (a FLIT_BYTES*8-bit value, wire byte 0 at the top) holding ``header``
    at wire byte offset ``byte_offset``."""
    top = 8 * (FLIT_BYTES - byte_offset)
    if byte_offset < 0 or byte_offset + header.nbytes > FLIT_BYTES:
        raise ValueError(f"{header.name} at byte {byte_offset} does not fit in a flit")
    return flit[top - header.width:top]


def header_view(flit, header: Header, byte_offset=0):
    """A :class:`~amaranth.lib.data.View` of ``header`` inside ``flit``."""
    return data.View(LAYOUTS[header.name], header_slice(flit, header, byte_offset))
