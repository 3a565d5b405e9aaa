-- Evidence snapshots (取证固证): one row per detection episode, files content-addressed.
CREATE TABLE video_evidence (
    sha256 text PRIMARY KEY,                -- hash of the annotated snapshot: the evidence id
    camera_id text NOT NULL,
    episode_id text NOT NULL,
    captured_at timestamptz NOT NULL,       -- device time of the frame, else its arrival
    stored_at timestamptz NOT NULL DEFAULT now(),
    size_bytes integer NOT NULL,
    faces integer NOT NULL DEFAULT 0,
    detections jsonb NOT NULL
);
CREATE INDEX video_evidence_camera ON video_evidence (camera_id, captured_at);
CREATE INDEX video_evidence_stored_at ON video_evidence (stored_at);

-- Every file of an evidence row: annotated, clean and their face-blurred shared copies.
-- A shared copy equals its original when no face was found (same hash, one file).
CREATE TABLE video_evidence_files (
    evidence_sha256 text NOT NULL REFERENCES video_evidence (sha256) ON DELETE CASCADE,
    variant text NOT NULL
        CHECK (variant IN ('annotated', 'clean', 'annotated_shared', 'clean_shared')),
    sha256 text NOT NULL,
    size_bytes integer NOT NULL,
    PRIMARY KEY (evidence_sha256, variant)
);
CREATE INDEX video_evidence_files_sha256 ON video_evidence_files (sha256);
