"""``ubproto sim``: run an experiment described by a YAML file.

An experiment file names a ``kind`` (which RTL and workload to run), the configuration
(the sections of :class:`ubproto.config.Config`) and the workload parameters of that kind::

    name: incast-4
    kind: switch            # a key of KINDS
    seed: 7
    config:                 # -> ubproto.config.Config (validated, unknown keys are errors)
      switch: {ports: 4}
    workload:               # kind-specific, validated by the kind's runner
      load: 0.9
    outputs:
      dir: out/incast-4     # default: out/<name>
      pcap: true
      waves: false

Each kind is a function ``run(experiment: Experiment) -> dict`` that writes what it wants into
``experiment.outdir`` and returns the metrics; this module writes ``metrics.json`` and
prints a summary. Kinds are imported lazily so one missing part does not stop the others.
"""

import dataclasses
import importlib
import json
import time
from pathlib import Path

import yaml

from ..config import Config, from_dict
from ..errors import ConfigError, UbprotoError
from .outputs import write_metrics

__all__ = ["KINDS", "Experiment", "load_experiment", "run_experiment", "add_arguments", "run"]

#: kind -> "module:function" taking an :class:`Experiment`. One line per kind.
KINDS = {
    "link": "ubproto.sim.experiment:run_link_kind",
    "switch": "ubproto.sim.experiment:run_switch_kind",
    "incast": "ubproto.hdl.cc.experiment:run_incast_kind",
}

_TOP_KEYS = {"name", "kind", "seed", "config", "workload", "outputs", "description"}
_OUTPUT_KEYS = {"dir", "pcap", "waves"}


@dataclasses.dataclass
class Experiment:
    name: str
    kind: str
    config: Config
    workload: dict
    outdir: Path
    pcap: bool = True
    waves: bool = False
    description: str = ""
    source: Path | None = None

    def workload_value(self, key, default, *, kind=None, lo=None, hi=None):
        """A workload parameter with type and range checks (clear error naming the key)."""
        value = self.workload.get(key, default)
        want = kind or type(default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool) and want is not bool:
            raise ConfigError(f"workload.{key} must be {want.__name__}, got {value!r}")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise ConfigError(f"workload.{key} must be in {lo}..{hi}, got {value}")
        return value

    def check_workload_keys(self, known):
        unknown = sorted(set(self.workload) - set(known))
        if unknown:
            raise ConfigError(f"workload: unknown parameter(s) {', '.join(unknown)} for kind "
                              f"{self.kind!r}; known: {', '.join(sorted(known))}")


def load_experiment(path, *, outdir=None, overrides=None):
    """Read and validate an experiment file; every mistake is a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such experiment file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(_TOP_KEYS))}")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{path}: kind must be one of {', '.join(sorted(KINDS))}, "
                          f"got {kind!r}")
    name = str(doc.get("name") or path.stem)
    config_doc = dict(doc.get("config") or {})
    if "seed" in doc:
        config_doc["seed"] = doc["seed"]
    for key, value in (overrides or {}).items():
        _apply_override(config_doc, key, value)
    config = from_dict(Config, config_doc, section="config")
    workload = doc.get("workload") or {}
    if not isinstance(workload, dict):
        raise ConfigError(f"{path}: workload must be a mapping")
    outputs = doc.get("outputs") or {}
    if not isinstance(outputs, dict) or set(outputs) - _OUTPUT_KEYS:
        raise ConfigError(f"{path}: outputs takes only {', '.join(sorted(_OUTPUT_KEYS))}")
    out = Path(outdir or outputs.get("dir") or Path("out") / name)
    return Experiment(name=name, kind=kind, config=config, workload=dict(workload),
                      outdir=out, pcap=bool(outputs.get("pcap", True)),
                      waves=bool(outputs.get("waves", False)),
                      description=str(doc.get("description", "")), source=path)


def _apply_override(doc, dotted, value):
    """``--set link.rx_buffer_cells=32`` -> doc["link"]["rx_buffer_cells"] = 32."""
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {part} is not a section")
    node[parts[-1]] = value


def run_experiment(exp: Experiment):
    module_name, _, func = KINDS[exp.kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UbprotoError(f"kind {exp.kind!r} is not available: {exc}") from None
    exp.outdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    metrics = getattr(module, func)(exp)
    metrics = dict(metrics)
    metrics.setdefault("wall_seconds", round(time.monotonic() - started, 3))
    write_metrics(exp.outdir / "metrics.json", metrics,
                  experiment={"name": exp.name, "kind": exp.kind, "seed": exp.config.seed,
                              "source": str(exp.source) if exp.source else None,
                              "config": dataclasses.asdict(exp.config),
                              "workload": exp.workload})
    return metrics


def _sections(exp, *names):
    return {name: dataclasses.asdict(getattr(exp.config, name)) for name in names}


def run_link_kind(exp: Experiment):
    """``kind: link``: two link endpoints through the fault injector (docs/link.md).
    Workload keys: ``traffic``, ``channel``, ``pcap_cycles``."""
    from ..hdl.link.experiment import run_link_experiment
    exp.check_workload_keys({"traffic", "channel", "pcap_cycles"})
    cfg = {**_sections(exp, "protocol", "link"), "seed": exp.config.seed, "name": exp.name,
           **exp.workload}
    return run_link_experiment(cfg, exp.outdir)


def run_switch_kind(exp: Experiment):
    """``kind: switch``: the N-port switch under RTL traffic (docs/switch.md).
    Workload keys: ``traffic``, ``iterations``, ``run``."""
    from ..hdl.switch.experiment import run_switch_experiment
    exp.check_workload_keys({"traffic", "iterations", "run"})
    cfg = {**_sections(exp, "switch"), "name": exp.name, **exp.workload}
    cfg.setdefault("run", {}).setdefault("seed", exp.config.seed)
    return run_switch_experiment(cfg, exp.outdir)


def _parse_value(text):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def add_arguments(parser):
    parser.add_argument("experiment", help="experiment YAML file (see experiments/)")
    parser.add_argument("--out", help="output directory (default: outputs.dir or out/<name>)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config parameter, e.g. --set link.rx_buffer_cells=32")
    parser.add_argument("--seed", type=int, help="override the seed")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run(args):
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes SECTION.KEY=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    if args.seed is not None:
        overrides["seed"] = args.seed
    exp = load_experiment(args.experiment, outdir=args.out, overrides=overrides)
    print(f"ubproto sim: {exp.name} (kind {exp.kind}, seed {exp.config.seed}) -> {exp.outdir}")
    metrics = run_experiment(exp)
    if args.json:
        print(json.dumps(metrics, sort_keys=True, default=str))
    else:
        width = max((len(k) for k in metrics), default=0)
        for key in sorted(metrics):
            value = metrics[key]
            if isinstance(value, (dict, list)):
                value = json.dumps(value, default=str)
                if len(value) > 100:
                    value = value[:97] + "..."
            print(f"  {key:<{width}}  {value}")
        print(f"ubproto sim: metrics in {exp.outdir / 'metrics.json'}")
    return 0 if metrics.get("passed", True) else 1
