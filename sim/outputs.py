"""Run outputs a person can open: metrics (JSON/CSV) and pcap captures.

Raw link flits are written with link type :data:`DLT_UB_FLITS` (LINKTYPE_USER0), which
``ubproto dissect`` reads; UB-over-Ethernet frames are written as ordinary Ethernet pcaps
that Wireshark and ``ubproto dissect`` both read.
"""

import csv
import json
import struct
import time
from pathlib import Path

from ..hdl.proto.dissect import DLT_ETHERNET, DLT_UB_FLITS

__all__ = ["DLT_UB_FLITS", "DLT_ETHERNET", "write_pcap", "write_metrics", "write_csv"]
_PCAP_MAGIC = 0xA1B2C3D4
_SNAPLEN = 262144


def write_pcap(path, frames, *, linktype=DLT_UB_FLITS, timestamps=None):
    """Write ``frames`` (iterable of bytes) to a classic pcap file.

    ``timestamps`` (seconds, one per frame) default to a 1 us spacing; simulations pass
    cycle counts divided by the clock frequency so the capture shows simulated time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", _PCAP_MAGIC, 2, 4, 0, 0, _SNAPLEN, linktype))
        for n, frame in enumerate(frames):
            t = timestamps[n] if timestamps is not None else n * 1e-6
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            frame = bytes(frame)
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)
    return path


def write_metrics(path, metrics, *, experiment=None):
    """Write a metrics dict as pretty JSON with provenance (time, experiment)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"experiment": experiment, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "metrics": metrics}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path


def write_csv(path, rows, fieldnames=None):
    """Write a list of dicts as CSV (for plotting in any tool)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    fieldnames = fieldnames or (list(rows[0]) if rows else [])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fieldnames)
        w.writeheader()
        w.writerows(rows)
    return path
