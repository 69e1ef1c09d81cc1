"""`ubproto dissect`: layers of good frames, field-by-field reports of bad ones, no tracebacks."""

import random
import subprocess
import sys

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from ubproto.cli import main
from ubproto.hdl.proto import codec
from ubproto.hdl.proto.dissect import dissect_flits
from ubproto.hdl.proto.formats import CciMode, Nlp, UBOE_UDP_PORT
from ubproto.hdl.proto.scapy_layers import CNP, CTPH, NTH16, RTPH, UBLink, UBoE
from ubproto.sim.outputs import write_pcap


def _cnp_frame():
    return bytes(UBLink(vl=1) / NTH16(scna=0x11, dcna=0x22, nlp=Nlp.CTP, cci_mode=CciMode.FECN,
                                      cci_fecn=3) / CTPH(opcode=1) / CNP(level=3, loc=1))


def test_dissect_hex_shows_every_layer(capsys):
    frame = _cnp_frame()
    assert main(["dissect", frame.hex()]) == 0
    out = capsys.readouterr().out
    for text in ("LPH:", "vl=1", "NTH16:", "scna=17", "dcna=34", "cci_mode=4", "CTPH:",
                 "opcode=1", "CNP:", "level=3", "loc=1"):
        assert text in out


def test_dissect_reports_malformed_field_by_field(capsys):
    frame = bytearray(_cnp_frame())
    frame[25] ^= 0xFF  # corrupt the second flit: CRC fails
    good = codec.encode_control("RETRY_REQ", rcv_ptr=42)
    assert main(["dissect", (bytes(frame) + good).hex()]) == 0
    out = capsys.readouterr().out
    assert "MALFORMED (bad_crc)" in out
    assert "as received: LPH:" in out and "vl=1" in out
    assert "RETRY_REQ" in out and "rcv_ptr=42" in out  # the good frame after it still shows


@pytest.mark.parametrize("text, message", [
    ("xyz", "not a hex digit"),
    ("abc", "odd number"),
    ("", "no hex digits"),
])
def test_dissect_bad_hex_is_one_line_error(text, message):
    proc = subprocess.run([sys.executable, "-m", "ubproto.cli", "dissect", text],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_dissect_raw_flit_pcap(tmp_path, capsys):
    rng = random.Random(5)
    frames = [codec.encode_packet(codec.DataPacket(bytes(rng.randrange(256) for _ in range(n)),
                                                   vl=n % 4))
              for n in (1, 50, 700)]
    path = write_pcap(tmp_path / "flits.pcap", frames)
    assert main(["dissect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("data packet") == 3 and "700 payload bytes" in out


def test_dissect_uboe_pcap(tmp_path, capsys):
    pkt = (Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=49152, dport=UBOE_UDP_PORT) /
           UBoE(nlp=Nlp.RTP, lbf=7) / RTPH(opcode=1, psn=1234) / b"payload")
    path = tmp_path / "uboe.pcap"
    wrpcap(str(path), [pkt, Ether() / IP() / UDP(dport=53) / b"dns"])
    assert main(["dissect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "UBoE:" in out and "lbf=7" in out and "RTPH:" in out and "psn=1234" in out
    assert "not UB-style" in out


def test_dissect_garbage_pcap_is_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.pcap"
    path.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 7)
    assert main(["dissect", str(path)]) == 1
    assert "not a readable pcap" in capsys.readouterr().err


def test_random_flit_streams_dissect_without_exceptions():
    rng = random.Random(9)
    for _ in range(200):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        lines = dissect_flits(blob)
        assert lines
