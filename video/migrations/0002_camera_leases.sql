-- Scale-out by camera: a camera's frames are analysed by one video worker at a time (its
-- motion model and tracks live there). Times are the database's (now()), so the workers'
-- clocks never matter.

-- Video workers that are alive: a row renewed on every heartbeat; the live ones (expires_at
-- in the future) divide the cameras between them (each takes at most its fair share).
CREATE TABLE video_workers (
    worker_id text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- One lease per camera. `epoch` grows by one at every acquisition: it is the fencing token a
-- worker's writes are checked against. holder NULL: released (free at once); a holder whose
-- expires_at has passed is presumed dead and the lease is free to take.
CREATE TABLE video_camera_leases (
    camera_id text PRIMARY KEY,
    holder text,
    epoch bigint NOT NULL DEFAULT 0,
    acquired_at timestamptz,
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    last_holder text                        -- who held it last (also after a release)
);

-- Each holding of a lease (camera, epoch): who, from when to when, why it ended, and the
-- frames analysed under it (flushed on each heartbeat). What moved when, for operators.
CREATE TABLE video_lease_tenures (
    camera_id text NOT NULL,
    epoch bigint NOT NULL,
    holder text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    taken_from text,                        -- 'new', 'released' or 'expired'
    ended_at timestamptz,
    end_reason text CHECK (end_reason IN ('released', 'expired', 'lost')),
    frames bigint NOT NULL DEFAULT 0,
    first_frame_at timestamptz,             -- frame times (device time, else arrival)
    last_frame_at timestamptz,
    PRIMARY KEY (camera_id, epoch)
);
CREATE INDEX video_lease_tenures_acquired ON video_lease_tenures (acquired_at);

-- Detection updates written by a leased worker, in the transaction that checked its lease
-- (camera, holder, epoch, not expired): a worker that lost the camera writes nothing. The
-- durable hand-off of detections to the engine, which reads past its watermark. Writers
-- take an advisory lock before drawing ids, so ids commit in order and the watermark never
-- passes a detection still being committed.
CREATE TABLE video_detections (
    id bigserial PRIMARY KEY,
    camera_id text NOT NULL,
    label text NOT NULL,
    score real NOT NULL,
    box integer[] NOT NULL,                 -- x, y, w, h in processing-frame pixels
    zone text,
    time timestamptz NOT NULL,
    episode_id text NOT NULL,
    frames integer NOT NULL,
    evidence_id text,
    worker_id text NOT NULL,
    epoch bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX video_detections_camera_time ON video_detections (camera_id, time);
CREATE INDEX video_detections_recorded_at ON video_detections (recorded_at);

-- How far the engine has read video_detections (one active engine at a time).
CREATE TABLE video_detection_watermark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint NOT NULL
);
INSERT INTO video_detection_watermark (last_id) VALUES (0);
