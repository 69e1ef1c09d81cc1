"""SLIP framing (RFC 1055) in Python: what the serial transport and its tests speak.

The hardware side is :mod:`ubproto.hdl.host.slip`. Frames are sent as ``END`` + escaped
bytes + ``END``; the leading ``END`` flushes any line noise received before the frame.
"""

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

__all__ = ["END", "ESC", "ESC_END", "ESC_ESC", "encode", "Decoder"]


def encode(frame):
    out = bytearray([END])
    for b in frame:
        if b == END:
            out += bytes([ESC, ESC_END])
        elif b == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


class Decoder:
    """Incremental decoder: ``feed(data)`` returns complete frames as ``(bytes, ok)``.

    ``ok`` is false for a frame with a broken escape (ESC followed by anything but ESC_END or
    ESC_ESC); empty frames (back-to-back END) are skipped.
    """

    def __init__(self):
        self.buf = bytearray()
        self.escaped = False
        self.bad = False

    def feed(self, data):
        frames = []
        for b in data:
            if b == END:
                if self.buf or self.bad:
                    frames.append((bytes(self.buf), not self.bad and not self.escaped))
                self.buf.clear()
                self.escaped = self.bad = False
            elif self.escaped:
                self.escaped = False
                if b == ESC_END:
                    self.buf.append(END)
                elif b == ESC_ESC:
                    self.buf.append(ESC)
                else:
                    self.bad = True
            elif b == ESC:
                self.escaped = True
            else:
                self.buf.append(b)
        return frames
