"""Prometheus collectors of the video package."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DETECTION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class VideoMetrics:
    """Every video counter; labels stay low-cardinality (never a camera id)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.frames_received = Counter(
            "offsite_video_frames_received_total",
            "Frames that arrived (MQTT or pulled), before any check",
            ["source"],
            registry=registry,
        )
        self.frames_decoded = Counter(
            "offsite_video_frames_decoded_total",
            "Frames decoded and run through the detectors",
            registry=registry,
        )
        self.frames_dropped = Counter(
            "offsite_video_frames_dropped_total",
            "Frames dropped without a dead letter: over the rate cap, queue full (the oldest "
            "goes), lost with a crashed worker, or pending at shutdown",
            ["reason"],
            registry=registry,
        )
        self.frames_rejected = Counter(
            "offsite_video_frames_rejected_total",
            "Frames dead-lettered, by reason",
            ["reason"],
            registry=registry,
        )
        self.clock_skew = Counter(
            "offsite_video_clock_skew_total",
            "Frames whose device time was too far from their arrival (arrival time used)",
            registry=registry,
        )
        self.dead_letters_lost = Counter(
            "offsite_video_dead_letters_lost_total",
            "Dead letters not written (their queue was full or the database failed)",
            registry=registry,
        )
        self.detection_seconds = Histogram(
            "offsite_video_detection_seconds",
            "Time per frame spent in each stage (decode, motion, fire, person, ...)",
            ["detector"],
            buckets=DETECTION_BUCKETS,
            registry=registry,
        )
        self.detections = Counter(
            "offsite_video_detections_total",
            "Detection updates handed to the rules, by label",
            ["label"],
            registry=registry,
        )
        self.episodes = Counter(
            "offsite_video_episodes_total",
            "Detection episodes started (an object confirmed), by label",
            ["label"],
            registry=registry,
        )
        self.evidence_bytes = Counter(
            "offsite_video_evidence_bytes_total",
            "Bytes of evidence files written (new content only)",
            registry=registry,
        )
        self.evidence_stored = Counter(
            "offsite_video_evidence_stored_total",
            "Evidence snapshots stored (one per episode)",
            registry=registry,
        )
        self.evidence_errors = Counter(
            "offsite_video_evidence_errors_total",
            "Evidence that could not be stored (the detection still goes out, without id)",
            registry=registry,
        )
        self.evidence_verify_failures = Counter(
            "offsite_video_evidence_verify_failures_total",
            "Evidence files whose content no longer matches their SHA-256 (or are missing)",
            registry=registry,
        )
        self.evidence_removed = Counter(
            "offsite_video_evidence_removed_total",
            "Evidence rows removed by retention",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "offsite_video_queue_depth", "Frames waiting for a worker", registry=registry
        )
        self.worker_restarts = Counter(
            "offsite_video_worker_restarts_total",
            "Detection worker processes restarted after they died",
            registry=registry,
        )
        self.worker_errors = Counter(
            "offsite_video_worker_errors_total",
            "Frames a detector raised an error on (the frame is skipped)",
            registry=registry,
        )
        self.cameras_online = Gauge(
            "offsite_video_cameras_online", "Cameras sending frames", registry=registry
        )
        # Camera leases (partition: leases).
        self.leases_held = Gauge(
            "offsite_video_leases_held", "Camera leases this worker holds", registry=registry
        )
        self.lease_workers = Gauge(
            "offsite_video_lease_workers",
            "Live video workers sharing the cameras, as of the last heartbeat",
            registry=registry,
        )
        self.leases_acquired = Counter(
            "offsite_video_leases_acquired_total",
            "Camera leases taken: new (never held by another), released (given back by "
            "another worker), expired (its worker stopped renewing)",
            ["taken_from"],
            registry=registry,
        )
        self.leases_moved = Counter(
            "offsite_video_leases_moved_total",
            "Camera leases taken over from another worker (released or expired)",
            registry=registry,
        )
        self.leases_ended = Counter(
            "offsite_video_leases_ended_total",
            "Camera leases this worker stopped holding: released (fair share, stop) or lost "
            "(not renewed in time)",
            ["reason"],
            registry=registry,
        )
        self.lease_errors = Counter(
            "offsite_video_lease_errors_total",
            "Heartbeats that failed (database unreachable); leases lapse after lease_s",
            registry=registry,
        )
        self.detections_unwritten = Counter(
            "offsite_video_detections_unwritten_total",
            "Detection updates of a leased worker lost because the database failed",
            registry=registry,
        )
        self.detections_fenced = Counter(
            "offsite_video_detections_fenced_total",
            "Detection updates not written because this worker no longer held the camera",
            registry=registry,
        )
