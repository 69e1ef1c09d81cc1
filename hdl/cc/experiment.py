"""Congestion experiments: running the RTL benches, and ``ubproto sim`` (YAML kind: incast).

The benches are cocotb testbenches in ``tests/cc_tb`` run under Verilator through
:func:`ubproto.verify.cocotb_harness.run_cocotb`; they write their measurements as JSON to a
file named by the ``record_to`` parameter, which :func:`run_bench` reads back. Plots are
written as dependency-free SVG (:func:`svg_plot`), so the benchmarks need nothing beyond the
project's own dependencies.
"""

import contextlib
import json
import math
import sys
import tempfile
from pathlib import Path

from ...errors import UbprotoError

__all__ = ["TESTBENCH_DIR", "run_bench", "svg_plot", "run_incast_experiment", "run_incast_kind"]

#: Where the cocotb testbenches live (the repository's tests/ folder, which holds cc_tb/).
TESTBENCH_DIR = Path(__file__).resolve().parents[2] / "tests"


def run_bench(design, testcase, params, *, module="cc_tb.red_tb"):
    """Run one cocotb test of ``module`` against ``design``; return what it recorded."""
    from ...verify.cocotb_harness import run_cocotb
    if not (TESTBENCH_DIR / "cc_tb").is_dir():
        raise UbprotoError(f"the congestion testbenches are not at {TESTBENCH_DIR / 'cc_tb'}; "
                           "run from a source checkout")
    with tempfile.TemporaryDirectory(prefix="ubproto-cc-") as tmp:
        record = Path(tmp) / "record.json"
        # The harness echoes the simulator's log on stdout; benchmarks print JSON lines
        # there, so the log goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            run_cocotb(design, module, testcase=testcase,
                       params={**params, "record_to": str(record)}, python_paths=[TESTBENCH_DIR])
        return json.loads(record.read_text())


# -- plots ---------------------------------------------------------------------------------

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
_WIDTH, _HEIGHT, _MARGIN = 640, 400, 60


def _ticks(lo, hi, count=5):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= step * factor:
            step *= factor
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _label(value):
    if value and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.0e}"
    return f"{value:g}"


def svg_plot(path, series, *, title, xlabel, ylabel, ylog=False):
    """Write a line plot. ``series``: list of ``(label, xs, ys, style)`` with style "line",
    "points" or "dashed". Returns ``path``."""
    xs_all = [x for _, xs, _, _ in series for x in xs]
    ys_all = [y for _, _, ys, _ in series for y in ys if y is not None and (y > 0 or not ylog)]
    if not xs_all or not ys_all:
        raise UbprotoError(f"nothing to plot in {path}")
    x_lo, x_hi = min(xs_all), max(xs_all)
    if ylog:
        y_lo, y_hi = math.log10(min(ys_all)), math.log10(max(ys_all))
    else:
        y_lo, y_hi = min(0, min(ys_all)), max(ys_all) * 1.05 or 1
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    y_hi = y_hi if y_hi > y_lo else y_lo + 1
    plot_w, plot_h = _WIDTH - 2 * _MARGIN, _HEIGHT - 2 * _MARGIN

    def px(x):
        return _MARGIN + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y):
        y = math.log10(y) if ylog else y
        return _HEIGHT - _MARGIN - (y - y_lo) / (y_hi - y_lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
           f'<text x="{_WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{title}</text>',
           f'<text x="{_WIDTH / 2}" y="{_HEIGHT - 14}" text-anchor="middle">{xlabel}</text>',
           f'<text x="16" y="{_HEIGHT / 2}" text-anchor="middle" '
           f'transform="rotate(-90 16 {_HEIGHT / 2})">{ylabel}</text>',
           f'<rect x="{_MARGIN}" y="{_MARGIN}" width="{plot_w}" height="{plot_h}" fill="none" '
           f'stroke="black"/>']
    for x in _ticks(x_lo, x_hi):
        out.append(f'<text x="{px(x):.1f}" y="{_HEIGHT - _MARGIN + 16}" '
                   f'text-anchor="middle">{_label(x)}</text>')
    y_ticks = [10 ** e for e in range(math.floor(y_lo), math.ceil(y_hi) + 1)] if ylog \
        else _ticks(y_lo, y_hi)
    for y in y_ticks:
        if (math.log10(y) if ylog else y) < y_lo - 1e-9:
            continue
        out.append(f'<text x="{_MARGIN - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_label(y)}</text>')
        out.append(f'<line x1="{_MARGIN}" x2="{_MARGIN + plot_w}" y1="{py(y):.1f}" '
                   f'y2="{py(y):.1f}" stroke="#ddd"/>')
    for i, (label, xs, ys, style) in enumerate(series):
        color = _PALETTE[i % len(_PALETTE)]
        points = [(px(x), py(y)) for x, y in zip(xs, ys) if y is not None and (y > 0 or not ylog)]
        if style == "points":
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points]
        else:
            dash = ' stroke-dasharray="6 4"' if style == "dashed" else ""
            path_d = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y) in enumerate(points))
            out.append(f'<path d="{path_d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        ly = _MARGIN + 16 + 16 * i
        out.append(f'<rect x="{_MARGIN + 10}" y="{ly - 9}" width="12" height="4" fill="{color}"/>')
        out.append(f'<text x="{_MARGIN + 28}" y="{ly - 3}">{label}</text>')
    out.append("</svg>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    return path


def run_incast_experiment(cfg: dict, outdir: Path) -> dict:
    """The incast experiment (:func:`.incast.run_incast`): ``cfg`` holds the keys of
    ``INCAST_DEFAULTS``; results and plots go to ``outdir``; returns the summaries."""
    from .incast import run_incast
    return run_incast(cfg, Path(outdir))


def run_incast_kind(experiment) -> dict:
    """``ubproto sim`` entry for ``kind: incast`` (an ``ubproto.sim.experiment.Experiment``):
    the workload section is the incast parameters (``fabric: switch`` runs it through the
    N-port switch), ``config.congestion`` the marking and DCQCN parameters,
    ``config.switch`` the switch (its ports and queue depth are set by the incast), ``seed``
    the LFSR seed."""
    from .incast import INCAST_DEFAULTS
    experiment.check_workload_keys(set(INCAST_DEFAULTS) - {"congestion", "switch"})
    cfg = {**experiment.workload, "congestion": experiment.config.congestion,
           "switch": experiment.config.switch, "seed": experiment.config.seed}
    summaries = run_incast_experiment(cfg, experiment.outdir)
    # The headline figures first: `ubproto sim` prints each metric on one line, shortened.
    metrics = {key: {**{k: s[k] for k in _HEADLINE}, **{k: v for k, v in s.items()
                                                         if k not in _HEADLINE}}
               for key, s in summaries.items()}
    # Lossless and correctly routed, whatever the marking: a run that drops or misroutes
    # fails (`ubproto sim` exits 1).
    broken = [key for key, s in summaries.items()
              if s["drops"] or s["cnps_misrouted"] or s["cnps_sent"] != s["cnps_received"]]
    metrics["passed"] = not broken
    if broken:
        metrics["failed_runs"] = broken
    return metrics


#: Summary fields shown first (in this order) by ``ubproto sim``.
_HEADLINE = ("peak_queue_bytes", "mean_queue_last_half_bytes", "drops", "utilisation_last_half",
             "time_to_converge_cycles", "marked", "cnps_sent")
