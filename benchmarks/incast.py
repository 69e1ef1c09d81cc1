"""N -> 1 incast with marking off, RED on, phantom on (docs/congestion.md).

    python benchmarks/incast.py [--quick] [--sources 4,8] [--outdir build/incast]
                                [--fabric bottleneck|switch]

Closed loop entirely in RTL: N backlogged DCQCN sources, a lossless egress queue with an
FECN marker and a phantom queue, a CNP-echoing sink. For each N and mode one JSON line:
peak and mean egress queue, drops (the lossless queue must show none), bottleneck
utilisation, time for the aggregate rate to converge, fairness; the queue over time goes to
``<outdir>/incast_queue_N<n>.svg``.

``--fabric bottleneck`` (default) runs :class:`ubproto.hdl.cc.incast.IncastBottleneck`, the
output port of an output-queued switch. ``--fabric switch`` is meant to run the same loop
through ``hdl/switch``; it stops with what the switch still has to provide if that is not
there yet.
"""

import argparse
import importlib
import json
import sys
from pathlib import Path

from ubproto.hdl.cc.incast import INCAST_PHANTOM_RED, run_incast

#: What --fabric switch needs from hdl/switch (module, attribute).
SWITCH_NEEDS = [
    ("ubproto.hdl.switch.switch", "Switch"),
]


def switch_missing():
    missing = []
    for module, attr in SWITCH_NEEDS:
        try:
            if not hasattr(importlib.import_module(module), attr):
                missing.append(f"{module}.{attr}")
        except ImportError:
            missing.append(f"{module}.{attr}")
    return missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k clocks per run instead of 1M")
    parser.add_argument("--sources", default="4,8")
    parser.add_argument("--outdir", type=Path, default=Path("build/incast"))
    parser.add_argument("--fabric", choices=("bottleneck", "switch"), default="bottleneck")
    args = parser.parse_args(argv)
    if args.fabric == "switch":
        missing = switch_missing()
        print(json.dumps({"bench": "incast", "fabric": "switch", "error": "switch not available",
                          "missing": missing or ["an incast top: N endpoints -> switch -> 1 "
                                                 "endpoint with per-(port, VL) occupancy in bytes "
                                                 "feeding hdl/cc/egress.py EgressCongestion"]}))
        return 2
    cfg = {"sources": [int(n) for n in args.sources.split(",")],
           "cycles": 200_000 if args.quick else 1_000_000,
           "sample_every": 1_000 if args.quick else 2_000,
           "congestion": dict(INCAST_PHANTOM_RED)}
    summaries = run_incast(cfg, args.outdir)
    for key, summary in summaries.items():
        print(json.dumps({"bench": "incast", "fabric": args.fabric, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
