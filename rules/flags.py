"""The HJ 212 data flag sets rule kinds judge by default (the marking rules, as data)."""

from __future__ import annotations

from ingest.models import FLAGS

# Only data marked N (normal) is a basis for judging an exceedance: the Ministry's marking
# rules (《污染物排放自动监测设备标记规则》) take data marked for maintenance, fault,
# calibration, stoppage and the like out of that judgment, and HJ 212 marks manual set values
# (S) and communication faults (B) as not measured. T (over the upper range) is left out too:
# the value is only a lower bound; a rule may add it with `valid_flags: [N, T]`.
JUDGED = frozenset({"N"})
EVERY = frozenset(FLAGS)
# Each kind's default is in its entry of rules.kinds.KINDS.
