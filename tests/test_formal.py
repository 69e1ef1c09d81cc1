"""The formal runner (ubproto.verify.formal): property naming, result parsing, errors, CLI.

Tests marked ``formal`` run SymbiYosys on tiny designs (about a second each once the YoWASP
tools are warmed up; the very first call compiles WebAssembly for about a minute or more).
"""

import sys

import pytest
from amaranth.hdl import Assert, Cover, Elaboratable, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ubproto.errors import ToolchainError, UbprotoError
from ubproto.verify import formal


def _mod4_counter(m, step):
    """A 4-bit count that goes 0, 1, 2, 3, 0, ... (advancing when ``step``). States 4..15
    are unreachable, but 4..9 lead to 10: an assertion ``count != 10`` is true, and
    k-induction needs k >= 7 to prove it."""
    count = Signal(4)
    with m.If(count == 3):
        m.d.sync += count.eq(0)
    with m.Else():
        m.d.sync += count.eq(count + step)
    return count


class Counter(wiring.Component):
    """The mod-4 counter with a free ``step`` input and the given properties."""

    def __init__(self, properties, *, always_step=False):
        self.properties = properties   # count -> list of Assert/Cover
        self.always_step = always_step
        super().__init__({"step": In(1)})

    def elaborate(self, platform):
        m = Module()
        count = _mod4_counter(m, 1 if self.always_step else self.step)
        m.d.comb += self.properties(count)
        return m


def never_two(count):
    return [Assert(count != 2, "never_two"), Assert(count != 10, "never_ten")]


def never_ten(count):
    return [Assert(count != 10, "never_ten")]


def covers(count):
    return [Cover(count == 3, "cover_three"), Cover(count == 7, "cover_seven")]


class Named(Elaboratable):
    def __init__(self, messages):
        self.messages = messages

    def elaborate(self, platform):
        m = Module()
        x = Signal()
        m.d.sync += x.eq(~x)
        for message in self.messages:
            m.d.comb += Assert(x | ~x, message)
        return m


# --- naming (no tools needed) ----------------------------------------------------------------

def test_named_properties_become_cell_names():
    text, table = formal.to_rtlil(Named(["first_property", "second one!"]))
    assert "cell $check \\first_property" in text
    assert "cell $check \\second_one" in text          # sanitized to an identifier
    assert table["first_property"] == ("assert", "top.dut")
    assert table["reset_in_first_step"][0] == "assume"  # the runner's reset convention


def test_unnamed_property_keeps_its_cell_name():
    text, table = formal.to_rtlil(Named([None]))
    assert "cell $check $" in text
    assert list(table) == ["reset_in_first_step"]


def test_duplicate_name_in_one_module_is_an_error():
    with pytest.raises(UbprotoError, match="'twice' is used twice"):
        formal.to_rtlil(Named(["twice", "twice"]))


def test_bad_arguments():
    with pytest.raises(UbprotoError, match="mode"):
        formal.check(object(), mode="simulate")   # checked before the design is used
    with pytest.raises(UbprotoError, match="depth"):
        formal.check(object(), depth=0)


def test_missing_tool_is_a_toolchain_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ubproto.sim.toolchain", None)   # import fails
    monkeypatch.setattr(formal, "_fallback_find_tool", lambda name: None)
    with pytest.raises(ToolchainError, match="sby not found"):
        formal._tools()


def test_unknown_target():
    with pytest.raises(UbprotoError, match="unknown target 'nope'"):
        formal.load_target("nope")


# --- runs --------------------------------------------------------------------------------------

@pytest.mark.formal
def test_bmc_names_the_failing_property(tmp_path):
    result = formal.check(Counter(never_two), mode="bmc", depth=6, workdir=tmp_path)
    assert not result.passed and result.status == "FAIL"
    assert result.failed_property == "never_two"
    assert result.failed == ["never_two"]
    failed = next(p for p in result.properties if p.name == "never_two")
    assert failed.step == 3 and failed.path == "never_two"
    assert failed.location.endswith("test_formal.py:" + str(_line_of("never_two")))
    assert result.trace.is_file() and result.trace.suffix == ".vcd"
    assert result.log.is_file()


@pytest.mark.formal
def test_prove_needs_enough_depth_for_induction(tmp_path):
    # With a free step the count could idle at 9 for ever, and no k would do.
    shallow = formal.check(Counter(never_ten, always_step=True), mode="prove", depth=3,
                           workdir=tmp_path / "k3")
    assert shallow.status == "UNKNOWN" and not shallow.passed
    assert shallow.failed_property == "never_ten"
    assert shallow.trace.name.startswith("trace_induct")
    deep = formal.check(Counter(never_ten, always_step=True), mode="prove", depth=8,
                        workdir=tmp_path / "k8")
    assert deep.passed and deep.status == "PASS" and deep.failed_property is None


@pytest.mark.formal
def test_cover_reports_reached_and_unreached(tmp_path):
    result = formal.check(Counter(covers), mode="cover", depth=8, workdir=tmp_path)
    assert not result.passed
    assert result.reached == ["cover_three"]
    assert result.failed == ["cover_seven"]
    reached = next(p for p in result.properties if p.name == "cover_three")
    assert reached.step == 4 and reached.trace.is_file()


@pytest.mark.formal
def test_tool_failure_is_an_error_with_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(formal, "_sby_text", lambda *args: "[options]\nmode nonsense\n")
    with pytest.raises(UbprotoError, match="could not run the job.*see .*"):
        formal.check(Named(["x"]), mode="bmc", depth=2, workdir=tmp_path)


@pytest.mark.formal
def test_cli_runs_a_registered_target(tmp_path, capsys):
    from ubproto.cli import main
    rc = main(["prove", "credit-counter", "--mode", "bmc", "--depth", "4",
               "--workdir", str(tmp_path)])
    assert rc == 0
    assert "bmc (depth 4): PASS" in capsys.readouterr().out
    rc = main(["prove", "credit-counter", "--mode", "bmc", "--depth", "4",
               "--mutant", "no_consume_check", "--workdir", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert rc == 1 and "credit_never_negative: FAILED" in out and "trace:" in out


def test_cli_lists_targets(capsys):
    from ubproto.cli import main
    assert main(["prove"]) == 0
    assert "credit-counter" in capsys.readouterr().out


def _line_of(text):
    with open(__file__) as f:
        for number, line in enumerate(f, 1):
            if f'Assert(count != 2, "{text}")' in line:
                return number
    raise AssertionError(text)
