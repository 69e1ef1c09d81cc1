"""N -> 1 incast with marking off, RED on, phantom on (docs/congestion.md).

    python benchmarks/incast.py [--quick] [--sources 4,8] [--outdir build/incast]
                                [--fabric switch|bottleneck]

Closed loop entirely in RTL: N backlogged DCQCN sources, a lossless egress queue with an
FECN marker and a phantom queue, a CNP-echoing sink. For each N and mode one line of
figures: peak and mean egress queue, drops (the lossless VL must show none), bottleneck
utilisation, time for the aggregate rate to converge, marks and CNPs; then one JSON line
with all of them. The queue over time goes to ``<outdir>/incast_queue_N<n>.svg`` (and the
series to ``incast_N<n>.csv``).

``--fabric switch`` (default) runs :class:`ubproto.hdl.cc.switch_incast.SwitchIncast`: the
sources on ports 1..N of the N-port switch (``hdl/switch``), the receiver behind port 0's
marker, the CNPs routed back through the switch, at ``INCAST_SWITCH_PROFILE`` (DCQCN's time
constants and RED thresholds scaled to the switch's 20 kB-per-source VOQs).
``--fabric bottleneck`` runs :class:`ubproto.hdl.cc.incast.IncastBottleneck`, the output port
of an output-queued switch with 320 kB per source, at DCQCN's paper values.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from ubproto.hdl.cc.incast import (INCAST_FABRICS, INCAST_MODES, INCAST_PHANTOM_RED,
                                   INCAST_SWITCH, INCAST_SWITCH_PROFILE, run_incast)

#: Clocks per run (full, --quick) by fabric: the switch's loop runs 10x faster.
CYCLES = {"switch": (400_000, 100_000), "bottleneck": (1_000_000, 200_000)}


def fabric_config(fabric):
    """The congestion and switch parameters the benchmark runs a fabric at."""
    if fabric == "switch":
        return {"congestion": dict(INCAST_SWITCH_PROFILE), "switch": dict(INCAST_SWITCH),
                "modes": list(INCAST_MODES)}
    return {"congestion": dict(INCAST_PHANTOM_RED)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a quarter (switch) or a fifth (bottleneck) of the clocks per run")
    parser.add_argument("--sources", default="4,8")
    parser.add_argument("--outdir", type=Path, default=Path("build/incast"))
    parser.add_argument("--fabric", choices=INCAST_FABRICS, default="switch")
    args = parser.parse_args(argv)
    try:
        sources = [int(n) for n in args.sources.split(",")]
    except ValueError:
        parser.error(f"--sources takes a comma-separated list of integers, got {args.sources!r}")
    full, quick = CYCLES[args.fabric]
    cycles = quick if args.quick else full
    cfg = {"fabric": args.fabric, "sources": sources, "cycles": cycles,
           "sample_every": cycles // 200, **fabric_config(args.fabric)}
    started = time.monotonic()
    summaries = run_incast(cfg, args.outdir)
    wall = round(time.monotonic() - started, 1)
    print(f"{'N':>2} {'mode':<11} {'peak B':>9} {'mean B':>9} {'mean B 2nd half':>15} {'drops':>5} "
          f"{'util':>6} {'util 2nd half':>13} {'converged at':>12} {'marks':>6} {'CNPs':>5}")
    for summary in summaries.values():
        converged = summary["time_to_converge_cycles"]
        print(f"{summary['sources']:>2} {summary['mode']:<11} {summary['peak_queue_bytes']:>9} "
              f"{summary['mean_queue_bytes']:>9.0f} {summary['mean_queue_last_half_bytes']:>15} "
              f"{summary['drops']:>5} {summary['utilisation']:>6.3f} "
              f"{summary['utilisation_last_half']:>13.3f} "
              f"{'never' if converged is None else converged:>12} {summary['marked']:>6} "
              f"{summary['cnps_sent']:>5}")
    print(f"plots: {args.outdir}/incast_queue_N<n>.svg; series: {args.outdir}/incast_N<n>.csv")
    print(json.dumps({"bench": "incast", "fabric": args.fabric, "cycles": cycles,
                      "quick": args.quick, "wall_seconds": wall, "results": summaries}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
