"""Register map description, the host's register protocol (retries, batching) and replay."""

import json

import pytest

from ubproto.errors import ConfigError
from ubproto.hdl.host.protocol import (Command, Op, Status, bridge_cycles, decode_response,
                                       encode_request, ProtocolError)
from ubproto.hdl.host.regmap import Block, Register, RegisterMap
from ubproto.platforms.designs import ModelBoard, design_regmap
from ubproto.platforms.hil import open_board
from ubproto.platforms.hil.board import Board, MapMismatch
from ubproto.platforms.hil.client import NoAnswer
from ubproto.platforms.hil.transports import ModelTransport, TargetError


def _map():
    return RegisterMap([
        Block("small", (Register("a", "rw", "a"), Register("b", "ro", "b"))),
        Block("big", (Register("t", "table", "t", width=8, count=20),
                      Register("c", "ro", "c", count=3))),
    ])


def test_blocks_are_aligned_and_named_addresses_resolve():
    rm = _map()
    for block in rm.blocks:
        span = 1 << block.span_bits
        assert rm.bases[block.name] % span == 0
    assert rm.address("big.t[19]") == rm.bases["big"] + 19
    assert rm.address("big.c[2]") == rm.bases["big"] + 22
    assert rm.lookup(rm.address("small.b"))[1].name == "b"
    assert rm.lookup(rm.bases["big"] + 23) is None          # inside the span, past the end
    with pytest.raises(KeyError):
        rm.address("big.c[3]")
    with pytest.raises(KeyError):
        rm.address("nope.x")
    with pytest.raises(KeyError):
        rm.address("big")


def test_json_round_trip_and_identity():
    rm = _map()
    again = RegisterMap.from_json(rm.to_json())
    assert again.map_id == rm.map_id and again.bases == rm.bases
    data = json.loads(rm.to_json())
    data["blocks"][0]["registers"][0]["width"] = 7
    with pytest.raises(ConfigError, match="damaged"):
        RegisterMap.from_json(json.dumps(data))
    with pytest.raises(ConfigError):
        RegisterMap.from_json("{not json")
    changed = RegisterMap([Block("small", (Register("a", "rw", "a"),))])
    assert changed.map_id != rm.map_id


@pytest.mark.parametrize("make", [
    lambda: Register("Bad", "rw", ""),
    lambda: Register("x", "rx", ""),
    lambda: Register("x", "rw", "", width=33),
    lambda: Register("x", "table", "", count=1),
    lambda: Register("x", "rw", "", width=4, reset=16),
    lambda: Block("b", ()),
    lambda: Block("b", (Register("x", "rw", ""), Register("x", "ro", ""))),
    lambda: RegisterMap([Block("b", (Register("x", "rw", ""),))] * 2),
    lambda: RegisterMap([Block("b", (Register("x", "ro", "", count=1 << 16),)),
                         Block("c", (Register("y", "ro", ""),))]),
])
def test_bad_descriptions_are_config_errors(make):
    with pytest.raises(ConfigError):
        make()


def test_design_maps_differ_by_design_and_parameters():
    from ubproto.config import HilConfig
    plain = design_regmap()
    node = design_regmap(design="scaleup-node")
    assert "traffic" in [b.name for b in node.blocks]
    assert plain.map_id != node.map_id
    assert design_regmap(HilConfig(lanes=3)).map_id != plain.map_id


def test_fast_encoding_matches_the_header_definitions():
    from ubproto.hdl.host.protocol import (COMMAND, REQUEST_HEADER, RESPONSE_HEADER, MAGIC,
                                           VERSION, encode_response_header)
    frame = encode_request(0x1234, [Command(Op.BURST_WRITE, 0xBEEF, 2, (1, 2))])
    assert frame[:4] == REQUEST_HEADER.pack(magic=MAGIC, version=VERSION, seq=0x1234)
    assert frame[4:8] == COMMAND.pack(op=Op.BURST_WRITE, count=2, addr=0xBEEF)
    assert encode_response_header(0x4321, Status.ERR_OP, 7) == RESPONSE_HEADER.pack(
        magic=MAGIC, version=VERSION, seq=0x4321, status=Status.ERR_OP, done=7)


def test_cycle_formula():
    cmds = [Command(Op.BURST_READ, 0, 10), Command(Op.WRITE, 0, 2, (1, 2))]
    assert bridge_cycles(cmds) == 1 + 7 + 7 + 10 * 6 + 7 + 2 * 8


def test_decode_response_rejects_garbage():
    for frame in (b"", b"\xb5\x10\x00", bytes([0xB4, 0x10, 0, 0, 0, 0]),
                  bytes([0xB5, 0x10, 0, 0, 0x77, 0]), bytes([0xB5, 0x10, 0, 0, 0, 1])):
        with pytest.raises(ProtocolError):
            decode_response(frame)


class LossyTransport(ModelTransport):
    """Loses every ``period``-th request and every ``period``-th answer."""

    def __init__(self, model, period=3):
        super().__init__(model)
        self.period = period
        self.count = 0
        self.timeout = 0.001

    def exchange(self, frame, timeout):
        self.count += 1
        if self.count % self.period == 0:
            return None                                  # request lost
        answer = self.model.answer(frame)
        if self.count % self.period == 1 and self.count > 1:
            return None                                  # answer lost: the board executed it
        return answer


def test_retries_never_execute_twice():
    model = ModelBoard()
    executed = []
    model.space.on_write("lanes.clear", lambda i, v: executed.append(v))
    board = Board(LossyTransport(model), model.regmap, url="lossy")
    for i in range(20):
        board.write("lanes.clear", 1)
    assert len(executed) == 20
    assert board.client.stats["retries"] > 0
    assert model.bridge.counters["replays"] > 0


def test_no_answer_is_a_clear_error():
    model = ModelBoard()

    class Dead(ModelTransport):
        timeout = 0.001

        def exchange(self, frame, timeout):
            return None

    with pytest.raises(NoAnswer, match="no answer"):
        Board(Dead(model), model.regmap, url="dead")


def test_map_mismatch_is_detected():
    model = ModelBoard(design="scaleup-node")
    with pytest.raises(MapMismatch):
        Board(ModelTransport(model), design_regmap(), url="model")


def test_batching_reads_hundreds_of_words_in_few_frames():
    with open_board("model://") as board:
        before = board.client.stats["requests"]
        words = board.read_burst(board.regmap.address("lanes.route"), 16)
        assert words == [0] * 16
        board.client.run([Command(Op.READ, board.regmap.address("sys.ident"), 600)])
        # 600 words = commands of 255 + 255 + 90; an answer holds up to 1472 bytes, so the
        # first command fills one frame and the other two share the second.
        assert board.client.stats["requests"] - before == 1 + 2


def _session(board):
    board.write("sys.scratch", 77)
    board.write_table("lanes.route", [1, 1])
    board.send(0, b"\x00\x00" + bytes(30))
    returned = board.receive(0, raw=True)
    return returned, board.read("sys.scratch"), board.counters("lanes")


def test_record_and_replay(tmp_path):
    recording = tmp_path / "session.jsonl"
    with open_board("model://", record=recording) as board:
        recorded = _session(board)
    with open_board(f"replay://{recording}") as board:
        replayed = _session(board)
    assert replayed == recorded
    assert recorded[1] == 77 and recorded[2]["rx_packets"] == 1 and recorded[0] is not None


def test_replay_detects_a_different_test(tmp_path):
    recording = tmp_path / "session.jsonl"
    with open_board("model://", record=recording) as board:
        board.write("sys.scratch", 1)
    with pytest.raises(TargetError):
        # Replays must ask exactly what was recorded, including sequence numbers.
        board = open_board(f"replay://{recording}")
        board.write("sys.scratch", 2)


# --- the switch's CSR block (hdl/switch/regs.py) ---------------------------------------------

def test_switch_block_covers_every_table_and_counter():
    from ubproto.config import SwitchConfig
    from ubproto.hdl.switch.counters import counter_map
    from ubproto.hdl.switch.regs import switch_block, switch_registers
    from ubproto.hdl.switch.switch import SwitchTable
    cfg = SwitchConfig(ports=4, num_vls=3, route_entries=64, ecmp_groups=1)
    regs = switch_registers(cfg)
    # Every run-time table of the switch is reachable from exactly one register.
    assert sorted(r.table for r in regs if r.table is not None) == sorted(SwitchTable)
    block = switch_block(cfg)
    assert block.register("route").count == 64 and block.register("route").access == "table"
    # A one-entry table (one ECMP group) becomes a plain rw register with its reset value.
    assert block.register("ecmp_size").access == "rw"
    assert block.register("vl_quantum").count == 3
    for name, dims, _ in counter_map(cfg.ports, cfg.num_vls):
        count = dims[0] * (dims[1] if len(dims) > 1 else 1)
        assert block.register(name).access == "ro" and block.register(name).count == count
    # One description: the model board's map and the hardware's map are the same object.
    from ubproto.platforms.designs import design_regmap
    from ubproto.platforms.designs.switch import SwitchDut
    from ubproto.hdl.host.core import HilCore
    dut = SwitchDut()
    assert HilCore(dut.csr_components).regmap.map_id == design_regmap(dut="switch").map_id


def test_switch_dut_parameters_are_validated():
    from ubproto.errors import ConfigError
    from ubproto.platforms.build import _hil_config
    _, dut = _hil_config({"switch_ports": "2", "switch_num_vls": "1"}, "scaleout-switch")
    assert dict(dut.params) == {"ports": 2, "num_vls": 1}
    with pytest.raises(ConfigError, match="ports must be in 2..16"):
        _hil_config({"switch_ports": "1"}, "scaleout-switch")
    with pytest.raises(ConfigError, match="need dut=switch"):
        _hil_config({"dut": "lanes", "switch_ports": "2"}, "scaleout-switch")
    with pytest.raises(ConfigError, match="unknown parameter"):
        _hil_config({"switch_nonsense": "2"}, "scaleout-switch")


def test_scaleup_node_with_the_switch_passes_its_onboard_traffic_test_on_the_model():
    """scaleup-node with dut=switch: the on-board generator's key is the DCNA; routed packets
    return to its sink (through reflectors or straight), the unrouted one is a counted drop."""
    from ubproto.platforms.hil.checks import onboard_traffic_test
    with open_board("model://", design="scaleup-node", dut="switch") as board:
        result = onboard_traffic_test(board, packets=16, length=90)
        assert result["ok"], result["checks"]
        assert result["expected_drops"] == 1 and all(result["expected_reflected"])
        # A misrouted table must make the check fail (the test can fail).
        received = board.read("traffic.received")
        board.write_table("switch.route", [0] * 16)
        board.write("traffic.start", 1)
        assert board.read("traffic.received") == received
