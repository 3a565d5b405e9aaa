"""Process-wide interpreter settings for a long-running offsite process.

The cyclic garbage collector. Profiling an ingest process under 20-reading messages
(py-spy --native, only the thread holding the interpreter lock) put 30 % of its time in
gc_collect_main: every message makes dozens of container objects (the decoded JSON, the
readings, the envelope, paho's message) that live for up to a batch in the writer's queue,
so they survive the young collections, reach the oldest generation, and make its full
collections frequent and as large as the queue plus everything start-up left behind. The
hot path makes no reference cycles (its objects die by reference counting), so after
start-up the objects alive then are frozen out of the collector's scans, and the young
generation is collected every 50,000 allocations instead of 700: cycles elsewhere (a
failed request's traceback, a reload) are still collected, only less often.
"""

from __future__ import annotations

import gc

# Allocations between young collections, and collections between older ones.
GC_THRESHOLDS = (50_000, 20, 20)


def settle_after_start() -> None:
    """Call once a process has started its services."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
