"""HJ 212 codec, table-driven: published packets, 2017 / 2025 / legacy, splits, rejections."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hj212.codes import tables
from hj212.crc import crc16, crc16_bytewise
from hj212.decoder import Auth, Decoder, Outcome
from hj212.framer import Framer, Garbage
from hj212.packet import Packet, PacketError, decode_packet, encode, reply_9014
from hj212.split import Reassembler
from ingest.codec import Limits
from ingest.models import RejectReason
from tests.hj212 import samples

ZONE = ZoneInfo("Asia/Shanghai")
# Wide enough for the published samples from 2016 on.
LIMITS = Limits(
    max_payload_bytes=1 << 20, max_future=timedelta(minutes=5), retention=timedelta(days=4000)
)
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
DECODER = Decoder(tables(), ZONE, LIMITS)


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=ZONE).astimezone(UTC)


def run(frame: bytes, reassembler: Reassembler | None = None) -> Outcome:
    got = DECODER.frame(frame, "hj212/test")
    assert isinstance(got, Packet), got
    return DECODER.packet(got, "hj212/test", NOW, reassembler or Reassembler(60, 8), lambda: 0.0)


def rows(out: Outcome) -> list[tuple[str, float, str]]:
    return [(r.metric, r.value, r.flag) for r in out.readings]


def test_crc_is_the_standards_not_modbus() -> None:
    # The Annex A example: 1C80 by the standard's algorithm (CRC-16/MODBUS would give 0759).
    segment = samples.ANNEX_A[6:-6]
    assert crc16(segment) == 0x1C80
    assert crc16_bytewise(segment) == 0x1C80


def _annex_a_bitwise(data: bytes) -> int:
    # Annex A's steps as the standard writes them, bit by bit, with no table.
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_folded_crc_equals_the_standards_steps_at_every_length() -> None:
    # The folded CRC relies on each byte's share repeating every 8 positions: every length
    # mod 8 and several word counts (the fold rounds up to a power of two) are checked.
    rng = random.Random(212)
    for n in [*range(70), 127, 128, 129, 255, 256, 257, 1000, 16383, 16384, 16385]:
        data = rng.randbytes(n)
        assert crc16(data) == _annex_a_bitwise(data) == crc16_bytewise(data), n
    published = [
        samples.ANNEX_A,
        samples.T212_PARSER_LEGACY,
        samples.T212_PARSER_README,
        samples.PY_CLIENT_WATER,
        samples.NETTY_HOURLY_FLAG9,
        samples.C_PRACTICE_3032,
        samples.JAVA_LEGACY_BAD_CRC,
        samples.RUST_TEST_PLACEHOLDER_CRC,
    ]
    for frame in published:
        segment = frame.rstrip(b"\r\n")[6:-4]
        assert crc16(segment) == _annex_a_bitwise(segment)


@pytest.mark.parametrize(
    ("frame", "version", "reply", "length_ok"),
    [
        pytest.param(samples.ANNEX_A, "2017", True, True, id="annex-a"),
        pytest.param(samples.T212_PARSER_LEGACY, "2005", False, True, id="t212-parser-legacy"),
        pytest.param(samples.T212_PARSER_README, "2005", False, True, id="lowercase-crc"),
        pytest.param(samples.PY_CLIENT_WATER, "2005", False, True, id="no-crlf-whole-message"),
        pytest.param(samples.NETTY_HOURLY_FLAG9, "2025", True, True, id="flag-9-version-2"),
        pytest.param(samples.C_PRACTICE_3032, "2017", True, True, id="cn-3032"),
    ],
)
def test_published_packets_with_right_crcs_decode(
    frame: bytes, version: str, reply: bool, length_ok: bool
) -> None:
    p = decode_packet(frame)
    assert (p.version, p.wants_reply, p.length_ok) == (version, reply, length_ok)


@pytest.mark.parametrize(
    ("frame", "computed"),
    [
        # Made-up CRC (and a length 10 bytes off): the segment's CRC is 2A80.
        pytest.param(samples.JAVA_LEGACY_BAD_CRC, "2A80", id="java-legacy-made-up-crc"),
        # FFFF is a placeholder its author never computed.
        pytest.param(samples.RUST_TEST_PLACEHOLDER_CRC, "4400", id="rust-placeholder-ffff"),
    ],
)
def test_published_packets_with_wrong_crcs_are_rejected(frame: bytes, computed: str) -> None:
    with pytest.raises(PacketError) as err:
        decode_packet(frame)
    assert err.value.reason is RejectReason.BAD_CRC
    assert f"computed {computed}" in err.value.detail
    assert err.value.mn is not None  # the dead letter can still be found by device


def test_legacy_2005_codes_map_to_2017_metrics() -> None:
    out = run(samples.T212_PARSER_LEGACY)
    assert out.letters == ()
    assert rows(out) == [("w00000", 36.91, "N"), ("w01018", 231.0, "N"), ("w21003", 1.803, "N")]
    assert {r.time for r in out.readings} == {local("20160824003817")}
    assert {r.device_id for r in out.readings} == {"LD130133000015"}
    assert out.replies == ()  # no Flag: no reply asked


def test_vendor_codes_are_kept_as_sent() -> None:
    assert rows(run(samples.T212_PARSER_README)) == [("ele01", 1.0, "N"), ("ele02", 0.0, "N")]


def test_hourly_packet_becomes_avg_hour_metrics_and_a_reply() -> None:
    out = run(samples.NETTY_HOURLY_FLAG9)
    assert rows(out)[:2] == [("w01010.avg_hour", 23.1, "N"), ("w01001.avg_hour", 7.64, "N")]
    assert len(out.readings) == 15
    assert out.readings[0].time == local("20201129210001")
    # The reply echoes QN, in the packet's version (Flag 8: version 2, no reply wanted).
    assert out.replies == (
        encode("QN=20201030000000437;ST=91;CN=9014;PW=123456;MN=NM100000_0005;Flag=8;CP=&&&&"),
    )


def test_unsupported_command_is_a_dead_letter_without_reply() -> None:
    out = run(samples.C_PRACTICE_3032)
    assert [d.reason for d in out.letters] == [RejectReason.UNSUPPORTED]
    assert "CN=3032" in out.letters[0].detail
    assert out.replies == ()


def packet(cn: str, cp: str, flag: int = 5, mn: str = "MN2017A", extra: str = "") -> bytes:
    return encode(
        f"QN=20261126160000123;ST=32;CN={cn};PW=123456;MN={mn};Flag={flag};{extra}CP=&&{cp}&&"
    )


@pytest.mark.parametrize(
    ("cn", "cp", "expected"),
    [
        pytest.param(
            "2011",
            "DataTime=20261126155900;w01018-Rtd=42.5,w01018-Flag=N,w01018-SampleTime=20261126150000;"
            "w21003-Rtd=3.1,w21003-Flag=C",
            [
                ("w01018", 42.5, "N"),
                ("w01018.sample_time", local("20261126150000").timestamp(), "N"),
                ("w21003", 3.1, "C"),
            ],
            id="2011-rtd-flag-sampletime",
        ),
        pytest.param(
            "2011",
            "DataTime=20261126155900;a21026-Rtd=20,a21026-ZsRtd=28.5,a21026-Flag=N",
            [("a21026", 20.0, "N"), ("a21026.zs", 28.5, "N")],
            id="2011-converted-value",
        ),
        pytest.param(
            "2051",
            "DataTime=20261126155000;w01018-Avg=40,w01018-Min=38,w01018-Max=44,w01018-Cou=1.2,"
            "w01018-Flag=M",
            [
                ("w01018.avg_minute", 40.0, "M"),
                ("w01018.min_minute", 38.0, "M"),
                ("w01018.max_minute", 44.0, "M"),
                ("w01018.cou_minute", 1.2, "M"),
            ],
            id="2051-minute",
        ),
        pytest.param(
            "2061",
            "DataTime=20261126150000;a34004-Avg=35,a34004-Flag=N;a21026-ZsAvg=30,a21026-Avg=21",
            [
                ("a34004.avg_hour", 35.0, "N"),
                ("a21026.zs_avg_hour", 30.0, "N"),
                ("a21026.avg_hour", 21.0, "N"),
            ],
            id="2061-hour",
        ),
        pytest.param(
            "2031",
            "DataTime=20261125000000;w00000-Cou=812.5,w00000-Flag=N",
            [("w00000.cou_day", 812.5, "N")],
            id="2031-day",
        ),
        pytest.param(
            "2061",
            "DataTime=20261126150000;011-Avg=30,011-Flag=N;B11-Avg=7",
            [("w01018.avg_hour", 30.0, "N"), ("legacy.B11.avg_hour", 7.0, "N")],
            id="legacy-codes-in-2017-packet",
        ),
    ],
)
def test_contract(cn: str, cp: str, expected: list[tuple[str, float, str]]) -> None:
    out = run(packet(cn, cp))
    assert out.letters == ()
    assert rows(out) == expected
    assert len(out.replies) == 1


def test_2025_flag_is_answered_in_2025() -> None:
    out = run(packet("2011", "DataTime=20261126155900;w01018-Rtd=1", flag=9))
    assert decode_packet(out.replies[0]).flag == 8
    assert b"CN=9014" in out.replies[0]
    assert b"QN=20261126160000123" in out.replies[0]


def test_wrong_length_with_right_crc_is_accepted_and_noted() -> None:
    right = packet("2011", "DataTime=20261126155900;w01018-Rtd=1")
    wrong = b"##%04d" % (int(right[2:6]) - 1) + right[6:]
    p = decode_packet(wrong)
    assert not p.length_ok
    assert rows(run(wrong)) == [("w01018", 1.0, "N")]


def split(pno: int, pnum: int, cp: str) -> bytes:
    return packet("2061", cp, flag=7, extra=f"PNUM={pnum};PNO={pno};")


def test_split_packets_are_reassembled_in_pno_order() -> None:
    r = Reassembler(60, 8)
    t = "DataTime=20261126150000"
    assert run(split(2, 3, f"{t};w21003-Avg=2"), r).store is False
    assert run(split(2, 3, f"{t};w21003-Avg=2"), r).store is False  # a resent piece
    assert run(split(3, 3, f"{t};w21011-Avg=0.3"), r).store is False
    out = run(split(1, 3, f"{t};w01018-Avg=40"), r)
    assert rows(out) == [
        ("w01018.avg_hour", 40.0, "N"),
        ("w21003.avg_hour", 2.0, "N"),
        ("w21011.avg_hour", 0.3, "N"),
    ]
    assert len(out.replies) == 3  # every piece asked for a reply
    assert r.waiting == 0


def test_an_incomplete_split_packet_is_given_up_without_reply() -> None:
    r = Reassembler(60, 8)
    p1 = DECODER.frame(split(1, 2, "DataTime=20261126150000;w01018-Avg=40"), "t")
    assert isinstance(p1, Packet)
    assert DECODER.packet(p1, "t", NOW, r, lambda: 0.0).store is False
    other = DECODER.frame(packet("2011", "DataTime=20261126155900;w01018-Rtd=1"), "t")
    assert isinstance(other, Packet)
    out = DECODER.packet(other, "t", NOW, r, lambda: 61.0)
    assert [d.reason for d in out.letters] == [RejectReason.INCOMPLETE_SPLIT]
    assert "only PNO 1 of PNUM=2" in out.letters[0].detail
    assert len(out.replies) == 1  # for the packet that did arrive whole


@pytest.mark.parametrize(
    ("frame", "reason", "detail"),
    [
        pytest.param(b"hello\r\n", RejectReason.BAD_FRAME, "starts with '##'", id="no-header"),
        pytest.param(b"##01x1QN=1&&1C80\r\n", RejectReason.BAD_FRAME, "4-digit", id="bad-length"),
        pytest.param(
            samples.ANNEX_A.replace(b"1C80", b"1G80"), RejectReason.BAD_FRAME, "4 hex", id="bad-hex"
        ),
        pytest.param(
            samples.ANNEX_A.replace(b"1C80", b"1C81"),
            RejectReason.BAD_CRC,
            "computed 1C80",
            id="crc",
        ),
        pytest.param(
            encode("QN=1;ST=32;CN=2011;MN=X1"), RejectReason.BAD_FRAME, "CP=&&", id="no-cp"
        ),
        pytest.param(
            encode("QN=1;ST=32;CN=2011;CP=&&&&"), RejectReason.BAD_FRAME, "no MN", id="no-mn"
        ),
        pytest.param(encode("QN=1;MN=A1;CP=&&&&"), RejectReason.BAD_FRAME, "no CN", id="no-cn"),
        pytest.param(
            encode("QN=1;CN=2011;MN=bad/mn;CP=&&&&"), RejectReason.BAD_DEVICE_ID, "MN", id="bad-mn"
        ),
        pytest.param(
            encode("QN=1;CN=2011;MN=A1;Flag=x;CP=&&&&"),
            RejectReason.BAD_FRAME,
            "Flag",
            id="flag-nan",
        ),
        pytest.param(
            encode("QN=1;CN=2011;MN=A1;Flag=7;CP=&&&&"),
            RejectReason.BAD_FRAME,
            "PNUM",
            id="split-no-pnum",
        ),
        pytest.param(
            encode("QN=1;CN=2011;MN=A1;Flag=7;PNUM=2;PNO=3;CP=&&&&"),
            RejectReason.BAD_FRAME,
            "outside",
            id="pno-out-of-range",
        ),
    ],
)
def test_frame_rejections(frame: bytes, reason: RejectReason, detail: str) -> None:
    got = DECODER.frame(frame, "hj212/test")
    assert not isinstance(got, Packet)
    assert (got.reason, got.payload) == (reason, frame)
    assert detail in got.detail


@pytest.mark.parametrize(
    ("cp", "reason", "detail", "kept"),
    [
        pytest.param("w01018-Rtd=1", RejectReason.BAD_TS, "no DataTime", [], id="no-datatime"),
        pytest.param(
            "DataTime=2026112615;w01018-Rtd=1", RejectReason.BAD_TS, "YYYYMMDD", [], id="short-time"
        ),
        pytest.param(
            "DataTime=20261126250000;w01018-Rtd=1", RejectReason.BAD_TS, "YYYY", [], id="hour-25"
        ),
        pytest.param(
            "DataTime=20261127160000;w01018-Rtd=1", RejectReason.FUTURE_TS, "ahead", [], id="future"
        ),
        pytest.param(
            "DataTime=20100101000000;w01018-Rtd=1",
            RejectReason.TOO_OLD,
            "retention",
            [],
            id="too-old",
        ),
        pytest.param(
            "DataTime=20261126155900;w01018-Rtd=1,w01018-Flag=K;w21003-Rtd=2",
            RejectReason.BAD_FLAG,
            "w01018-Flag='K'",
            ["w21003"],
            id="unknown-flag",
        ),
        pytest.param(
            "DataTime=20261126155900;w01018-Rtd=abc;w21003-Rtd=2",
            RejectReason.NON_NUMERIC,
            "w01018-Rtd='abc'",
            ["w21003"],
            id="non-numeric",
        ),
        pytest.param(
            "DataTime=20261126155900;w01018-Rtd=nan",
            RejectReason.NON_NUMERIC,
            "finite",
            [],
            id="nan",
        ),
        pytest.param(
            "DataTime=20261126155900;w01018-Rtd=1,w01018-SampleTime=2026",
            RejectReason.BAD_TS,
            "SampleTime",
            ["w01018"],
            id="bad-sample-time",
        ),
        pytest.param("DataTime=20261126155900", RejectReason.EMPTY, "no values", [], id="empty"),
    ],
)
def test_value_rejections(cp: str, reason: RejectReason, detail: str, kept: list[str]) -> None:
    out = run(packet("2011", cp))
    assert [d.reason for d in out.letters] == [reason]
    assert detail in out.letters[0].detail
    assert [r.metric for r in out.readings] == kept
    # Refused for good (the reason is kept): answered, so the logger does not resend forever.
    assert len(out.replies) == 1


@pytest.mark.parametrize(
    ("auth", "reason"),
    [(Auth.UNKNOWN, RejectReason.UNKNOWN_DEVICE), (Auth.WRONG_PASSWORD, RejectReason.BAD_PASSWORD)],
)
def test_authentication_rejections(auth: Auth, reason: RejectReason) -> None:
    p = decode_packet(samples.ANNEX_A)
    letter = DECODER.authenticated(p, auth, "t")
    assert letter is not None
    assert (letter.reason, letter.device_id, letter.payload) == (reason, p.mn, samples.ANNEX_A)
    assert DECODER.authenticated(p, Auth.OK, "t") is None


def test_reply_is_a_valid_frame() -> None:
    p = decode_packet(samples.ANNEX_A)
    reply = decode_packet(reply_9014(p))
    assert (reply.cn, reply.qn, reply.mn, reply.flag, reply.st) == (
        "9014",
        p.qn,
        p.mn,
        4,
        "91",
    )


def test_framer_cuts_a_stream_and_keeps_garbage() -> None:
    f = Framer(max_frame_bytes=4096)
    stream = b"noise" + samples.ANNEX_A + b"##0050QN=cut" + samples.T212_PARSER_LEGACY
    out: list[bytes | Garbage] = []
    for i in range(0, len(stream), 7):  # arbitrary TCP segmenting
        out += f.feed(stream[i : i + 7])
    assert [o if isinstance(o, bytes) else type(o) for o in out] == [
        Garbage,
        samples.ANNEX_A,
        Garbage,
        samples.T212_PARSER_LEGACY,
    ]
    assert f.pending == 0


def test_framer_gives_up_on_an_endless_frame() -> None:
    f = Framer(max_frame_bytes=100)
    out = f.feed(b"##0100" + b"x" * 200)
    assert len(out) == 1
    assert isinstance(out[0], Garbage)
    assert "no CRLF within 100 bytes" in out[0].why
    assert f.feed(samples.ANNEX_A) == [samples.ANNEX_A]
