"""Engine: late data in event order, drops beyond lateness, idempotency, the order property."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.models import DeviceStatus, Reading
from rules.bound import fingerprint
from rules.engine import ClueOp, Engine, OpenClue
from rules.episodes import EpisodeBook
from rules.settings import RulesSettings
from tests.rules.support import T0, MemoryDirectory, at, device, readings, rule

CREDIT = RulesSettings().credit
LATENESS_MIN = 10


def minutes(ops: list[ClueOp]) -> list[tuple[str, float, float]]:
    t0 = T0.timestamp()
    return [(o.action, (o.started_at - t0) / 60, (o.at - t0) / 60) for o in ops]


def engine_for(r: Any, lateness_min: float = LATENESS_MIN, **kw: Any) -> Engine:
    directory = MemoryDirectory([device("d1", "outlet"), device("d2", "outlet")])
    return Engine([r], directory, CREDIT, lateness_min * 60, **kw)


HOLD = {"kind": "threshold", "selector": {"metric": "x"}, "op": ">", "limit": 50, "for": "2m"}


def test_late_reading_withdraws_a_clue_it_disproves() -> None:
    e = engine_for(rule(**HOLD))
    ops = e.on_readings(readings("d1", "x", [(0, 60), (2, 60)]))
    assert minutes(ops) == [("open", 0, 2)]
    # Minute 1 was compliant: in event order the hold never completed.
    assert minutes(e.on_readings(readings("d1", "x", [(1, 40)]))) == [("withdraw", 0, 1)]


def test_late_reading_completes_an_episode_in_order() -> None:
    e = engine_for(rule(kind="threshold", selector={"metric": "x"}, op=">", limit=50))
    assert minutes(e.on_readings(readings("d1", "x", [(0, 60), (2, 60)]))) == [("open", 0, 0)]
    # A compliant reading at minute 1 splits it into two episodes.
    assert minutes(e.on_readings(readings("d1", "x", [(1, 40)]))) == [
        ("resolve", 0, 1),
        ("open", 2, 2),
    ]


def test_reading_beyond_lateness_is_counted_and_ignored() -> None:
    dropped: list[str] = []
    e = engine_for(rule(**HOLD), on_late_dropped=dropped.append)
    e.on_readings(readings("d1", "x", [(0, 10), (30, 10)]))
    assert e.on_readings(readings("d1", "x", [(15, 99), (16, 99), (17, 99)])) == []
    assert dropped == ["r1", "r1", "r1"]


def test_redelivered_reading_is_a_no_op() -> None:
    e = engine_for(rule(kind="threshold", selector={"metric": "x"}, op=">", limit=50))
    batch = readings("d1", "x", [(0, 60), (1, 60)])
    assert minutes(e.on_readings(batch)) == [("open", 0, 0)]
    assert e.on_readings(batch) == []
    assert e.on_readings(batch[:1]) == []


def test_a_reading_touches_only_streams_of_its_metric() -> None:
    evaluated: list[int] = []
    rules = [
        rule(id=f"r{i}", kind="threshold", selector={"metric": f"m{i}"}, op=">", limit=1)
        for i in range(50)
    ]
    e = Engine(rules, MemoryDirectory(), CREDIT, 60, on_evaluations=evaluated.append)
    e.on_readings([Reading(at(0), "d1", "m7", 0.0), Reading(at(0), "d1", "nope", 0.0)])
    assert evaluated == [1]
    assert len(e.streams) == 1


def _arrival_order(points: list[tuple[str, float, float]], jitter: list[float]) -> list[Reading]:
    # Sorting by t + jitter (jitter < lateness) yields every order where no reading arrives
    # after one that is `lateness` or more younger: exactly "any order within the lateness".
    keyed = sorted(zip(points, jitter, strict=True), key=lambda pj: pj[0][1] + pj[1])
    return [Reading(at(m), dev, "x", v) for (dev, m, v), _ in keyed]


RULES = [
    {"kind": "threshold", "selector": {"metric": "x"}, "op": ">", "limit": 50},
    {
        "kind": "threshold",
        "selector": {"metric": "x"},
        "op": ">",
        "limit": 50,
        "for": "3m",
        "clear": 30,
        "keep_firing_for": "2m",
    },
    {
        "kind": "window",
        "selector": {"metric": "x"},
        "agg": "avg",
        "align": "sliding",
        "size": "5m",
        "expected_interval": "1m",
        "min_valid_ratio": 0.4,
        "op": ">",
        "limit": 50,
    },
    {"kind": "rate", "selector": {"metric": "x"}, "op": ">", "limit": 20, "per": "1m"},
    {"kind": "flatline", "selector": {"metric": "x"}, "for": "4m", "min_samples": 3},
]


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    rule_index=st.integers(0, len(RULES) - 1),
    n=st.integers(1, 40),
)
def test_any_order_within_lateness_gives_the_same_clues(
    data: st.DataObject, rule_index: int, n: int
) -> None:
    values = st.sampled_from([10.0, 40.0, 55.0, 60.0, 90.0])
    points = [
        (data.draw(st.sampled_from(["d1", "d2"])), float(i), data.draw(values)) for i in range(n)
    ]
    jitter = data.draw(st.lists(st.floats(0, LATENESS_MIN - 0.01), min_size=n, max_size=n))
    r = rule(**RULES[rule_index])

    def clues(order: list[Reading]) -> list[tuple[str, float, float | None]]:
        e = engine_for(r)
        book = EpisodeBook()
        for reading in order:
            book.apply(e.on_readings([reading]))
        return [(ep.fingerprint, ep.started_at, ep.ended_at) for ep in book.standing()]

    in_order = clues(_arrival_order(points, [0.0] * n))
    shuffled = clues(_arrival_order(points, jitter))
    assert shuffled == in_order


def test_offline_status_starts_absence_watch_without_data() -> None:
    r = rule(kind="absence", selector={"role": "outlet"}, **{"for": "30m"})
    e = engine_for(r)
    assert e.tick(at(60).timestamp()) == []  # never heard of d1: nothing to watch
    e.on_status(DeviceStatus("d1", online=False, time=at(0)))
    assert minutes(e.tick(at(20).timestamp())) == []
    assert minutes(e.tick(at(31).timestamp())) == [("open", 0, 31)]
    assert minutes(e.tick(at(40).timestamp())) == []  # already firing: no second clue
    assert minutes(e.on_readings(readings("d1", "x", [(45, 1.0)]))) == [("resolve", 0, 45)]


def test_restored_open_clue_is_continued_not_reopened() -> None:
    r = rule(kind="threshold", selector={"metric": "x"}, op=">", limit=50)
    e = engine_for(r)
    ops = e.restore(
        readings("d1", "x", [(0, 60), (1, 70)]),
        [OpenClue(fingerprint("r1", "d1"), at(0).timestamp())],
    )
    assert ops == []
    assert e.on_readings(readings("d1", "x", [(2, 80)])) == []
    assert minutes(e.on_readings(readings("d1", "x", [(3, 10)]))) == [("resolve", 0, 3)]
