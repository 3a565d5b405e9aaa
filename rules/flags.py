"""Which HJ 212 data flags each rule kind judges by default (the marking rules, as data)."""

from __future__ import annotations

from ingest.models import FLAGS

# Only data marked N (normal) is a basis for judging an exceedance: the Ministry's marking
# rules (《污染物排放自动监测设备标记规则》) take data marked for maintenance, fault,
# calibration, stoppage and the like out of that judgment, and HJ 212 marks manual set values
# (S) and communication faults (B) as not measured. T (over the upper range) is left out too:
# the value is only a lower bound; a rule may add it with `valid_flags: [N, T]`.
JUDGED = frozenset({"N"})
EVERY = frozenset(FLAGS)

DEFAULT_VALID_FLAGS: dict[str, frozenset[str]] = {
    "threshold": JUDGED,
    "window": JUDGED,
    "rate": JUDGED,
    "flatline": JUDGED,
    "composite": JUDGED,
    # Any packet shows the device is reporting; whether its data is valid is another rule.
    "absence": EVERY,
    # It counts flags, so it must see them all.
    "flag_share": EVERY,
    "detection": EVERY,
}
