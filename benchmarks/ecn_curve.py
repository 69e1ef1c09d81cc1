"""The measured RED/FECN marking curve against the formula (docs/congestion.md).

    python benchmarks/ecn_curve.py [--quick] [--decisions N] [--plot docs/figures/ecn_curve.svg]

RedCurveHarness makes one marking decision per clock at a held queue depth in Verilator and
counts the marks. For each depth one JSON line: depth, decisions, marks, the formula's and
the hardware's probability, the measured fraction and its z-score (binomial); then a summary
line with the largest |z|. Two profiles: RED (Kmin 20 kB, Kmax 120 kB, Pmax 0.5) and the
DCQCN paper's (5 kB, 200 kB, 1 %). --quick: 10^4 decisions per depth instead of 10^6.
"""

import argparse
import json
import sys
from pathlib import Path

from ubproto.hdl.cc.experiment import run_bench, svg_plot
from ubproto.hdl.cc.harness import RedCurveHarness

PROFILES = {
    "red": (20_000, 120_000, 0.5),
    "dcqcn": (5_000, 200_000, 0.01),
}
DEPTH_POINTS = 20
OCCUPANCY_BITS = 24


def depths(kmin, kmax):
    """Below Kmin, Kmin, the linear region, Kmax and above."""
    inner = [kmin + (kmax - kmin) * i // DEPTH_POINTS for i in range(1, DEPTH_POINTS)]
    return [0, kmin - 1, kmin] + inner + [kmax - 1, kmax, 2 * kmax]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 decisions per depth")
    parser.add_argument("--decisions", type=int, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="write an SVG of the curves")
    args = parser.parse_args(argv)
    decisions = args.decisions or (10_000 if args.quick else 1_000_000)
    worst, plotted = 0.0, []
    for name, (kmin, kmax, pmax) in PROFILES.items():
        records = run_bench(RedCurveHarness, "marking_curve", {
            "occupancy_bits": OCCUPANCY_BITS, "kmin": kmin, "kmax": kmax, "pmax": pmax,
            "depths": depths(kmin, kmax), "decisions": decisions, "sigmas": 3.0,
            "step_k": kmin or 1})
        for r in records:
            print(json.dumps({"bench": "ecn_curve", "profile": name, "kmin": kmin, "kmax": kmax,
                              "pmax": pmax, **r}))
            if r["z"] is not None:
                worst = max(worst, abs(r["z"]))
        plotted.append((name, kmin, kmax, pmax, records))
    print(json.dumps({"bench": "ecn_curve", "summary": True, "decisions_per_depth": decisions,
                      "depths": sum(len(p[4]) for p in plotted), "max_abs_z": round(worst, 3)}))
    if args.plot:
        series = []
        for name, kmin, kmax, pmax, records in plotted:
            inside = [r for r in records if r["depth"] < 2 * kmax]
            xs = [r["depth"] / kmax for r in inside]
            series.append((f"{name}: formula", xs, [r["p_formula"] for r in inside], "line"))
            series.append((f"{name}: measured", xs, [r["measured"] for r in inside], "points"))
        svg_plot(args.plot, series, title=f"Marking probability vs queue depth ({decisions} decisions/depth)",
                 xlabel="queue depth / Kmax", ylabel="mark probability", ylog=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
