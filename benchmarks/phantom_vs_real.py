"""One flow swept from 0.80 to 1.00 of line rate: real-queue p99, phantom occupancy and
mark fraction vs offered load, gamma = 1/1.05 (docs/congestion.md).

    python benchmarks/phantom_vs_real.py [--quick] [--plot-dir docs/figures]

SingleFlowBottleneck in Verilator: Bernoulli packet arrivals (8-word, 160-byte packets) into
an egress queue served at line rate, a FecnMarker on the departures marking from the phantom
queue (both rules vote; both are counted). One JSON line per offered load, then a summary.
Expected (HULL, Uno): the phantom marks only above gamma x C = 0.952 C, while the real queue
is still short; the real-queue rule marks only as the load approaches 1.
"""

import argparse
import json
import sys
from pathlib import Path

from ubproto.hdl.cc.experiment import run_bench, svg_plot
from ubproto.hdl.cc.harness import SingleFlowBottleneck

GAMMA = 1 / 1.05
LOADS = [0.80, 0.85, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.00]
PACKET_WORDS = 8
#: RED on the real queue (DCQCN-like thresholds) and on the phantom queue.
REAL_RED = (5_000, 200_000, 0.01)
PHANTOM_RED = (10_000, 100_000, 0.1)
#: Histogram bin width by load: (highest load, log2 bytes per bin).
HIST_SHIFTS = [(0.90, 7), (0.96, 8), (0.98, 9), (1.0, 11)]


def bench_params(window, warmup):
    return {"loads": LOADS, "packet_words": PACKET_WORDS, "window": window, "warmup": warmup,
            "real_red": REAL_RED, "phantom_red": PHANTOM_RED, "source": "PHANTOM",
            "hist_shifts": HIST_SHIFTS}


def run(window, warmup):
    return run_bench(lambda: SingleFlowBottleneck(packet_words=PACKET_WORDS, gamma=GAMMA),
                     "offered_load_sweep", bench_params(window, warmup),
                     module="cc_tb.bottleneck_tb")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5-clock windows instead of 10^6")
    parser.add_argument("--plot-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    window = 100_000 if args.quick else 1_000_000
    records = run(window, warmup=window // 10)
    for r in records:
        print(json.dumps({"bench": "phantom_vs_real", "gamma": GAMMA, **r}))
    below = [r for r in records if r["offered"] < GAMMA]
    above = [r for r in records if r["offered"] >= GAMMA + 0.01]
    print(json.dumps({"bench": "phantom_vs_real", "summary": True, "window_cycles": window,
                      "max_mark_fraction_below_gamma": max(r["mark_fraction"] for r in below),
                      "min_mark_fraction_above_gamma": min(r["mark_fraction"] for r in above),
                      "max_phantom_mean_below_gamma": max(r["phantom_mean_bytes"] for r in below)}))
    if args.plot_dir:
        xs = [r["offered"] for r in records]
        svg_plot(args.plot_dir / "phantom_vs_real_marks.svg", [
            ("phantom rule", xs, [r["phantom_rule_fraction"] for r in records], "line"),
            ("real-queue rule", xs, [r["real_rule_fraction"] for r in records], "line"),
        ], title=f"Mark fraction vs offered load (gamma = 1/1.05, {window} clocks/point)",
            xlabel="offered load / line rate", ylabel="fraction of packets marked")
        svg_plot(args.plot_dir / "phantom_vs_real_queues.svg", [
            ("real queue p99", xs, [r["real_p99_bytes"] for r in records], "line"),
            ("phantom occupancy (mean)", xs, [r["phantom_mean_bytes"] for r in records], "line"),
        ], title="Real-queue p99 and phantom occupancy vs offered load",
            xlabel="offered load / line rate", ylabel="bytes", ylog=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
