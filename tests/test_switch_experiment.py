"""Saturation experiment plumbing and the classical HOL result, kept short for CI (the full
sweep is benchmarks/switch_saturation.py)."""

import functools
import json
import re

import pytest

import ubproto.hdl.switch.switch as switch_module
from ubproto.config import SwitchConfig
from ubproto.errors import ConfigError, UbprotoError
from ubproto.hdl.switch.experiment import (HOL_THROUGHPUT, SwitchExperimentTop, run_point,
                                           run_switch_experiment)
from ubproto.hdl.switch.voq import VoqBuffer
from ubproto.sim.build import to_verilog

FIFO4 = dict(ports=4, num_vls=1, queueing="fifo", allocator="fifo")


def test_hol_blocking_n4_matches_karol():
    point = run_point(SwitchConfig(**FIFO4), saturate=True, warmup=5_000, measure=200_000)
    assert abs(point["throughput"] - HOL_THROUGHPUT[4]) <= 0.01, point
    assert point["misrouted"] == 0 and point["order_errors"] == 0
    assert sum(point["switch_drops"].values()) == 0


def test_experiment_entry_writes_metrics(tmp_path):
    cfg = {"kind": "switch", "name": "fifo-loads", "switch": FIFO4,
           "traffic": {"loads": [0.3, 0.5], "packet_flits": 1},
           "run": {"warmup_cycles": 2_000, "measure_cycles": 20_000, "seed": 3}}
    metrics = run_switch_experiment(cfg, tmp_path)
    points = metrics["points"]
    assert [p["offered_load"] for p in points] == [0.3, 0.5]
    for p in points:   # below the HOL limit the switch carries what is offered
        assert abs(p["throughput"] - p["offered_load"]) < 0.02, p
        assert p["delay_mean"] >= 3 and p["delay_p99"] >= p["delay_p50"]
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["points"]
    assert (tmp_path / "points.csv").read_text().count("\n") == 3
    assert (tmp_path / "switch.svg").read_text().startswith("<svg")


def test_experiment_rejects_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        run_switch_experiment({"kind": "switch", "traffik": {}}, tmp_path)
    with pytest.raises(ConfigError, match="iterations"):
        run_point(SwitchConfig(**FIFO4), load=0.5, iterations=2)


def test_every_property_of_the_native_model_reports_its_name():
    """The native model has no Verilator assertions; a property is reported by the name the
    design writes when it fails, so an unnamed Assert would go unchecked there."""
    verilog = to_verilog(SwitchExperimentTop(SwitchConfig(ports=2, num_vls=1)), "top")
    asserts = re.findall(r"(?m)^(.*)\n\s*assert \(", verilog)
    assert len(asserts) >= 10
    unnamed = [line for line in asserts if "$write(" not in line]
    assert not unnamed, unnamed


def test_native_run_stops_at_a_violated_property(monkeypatch):
    """A deliberately broken VOQ (its head `last` register is not refreshed) must stop the
    run with the property's name, not return numbers."""
    monkeypatch.setattr(switch_module, "VoqBuffer",
                        functools.partial(VoqBuffer, mutant="head_last_stale"))
    cfg = SwitchConfig(ports=2, num_vls=1, queueing="fifo", allocator="fifo")
    with pytest.raises(UbprotoError, match="voq_head_last_matches_ram"):
        run_point(cfg, saturate=True, packet_flits=2, warmup=1000, measure=1_000_000)
