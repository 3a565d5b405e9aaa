-- Findings of a task, one row per department's entry (text and photos), and the photos
-- themselves, content-addressed by SHA-256 so a photo is stored once and verified on read.
CREATE TABLE finding_photos (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    size_bytes integer NOT NULL,
    content bytea NOT NULL,
    uploaded_at timestamptz NOT NULL,
    uploaded_by text NOT NULL
);

CREATE TABLE task_findings (
    id bigserial PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES tasks (id),
    department text NOT NULL,
    author text NOT NULL,
    text text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);
CREATE INDEX task_findings_task ON task_findings (task_id, id);

CREATE TABLE task_finding_photos (
    finding_id bigint NOT NULL REFERENCES task_findings (id),
    position integer NOT NULL,
    sha256 text NOT NULL REFERENCES finding_photos (sha256),
    PRIMARY KEY (finding_id, position)
);
CREATE INDEX task_finding_photos_sha256 ON task_finding_photos (sha256);

-- The board sorts and filters open alerts by these; 10,000 open alerts stay one index scan.
CREATE INDEX alerts_open_opened ON alerts (opened_at DESC, id DESC)
    WHERE state IN ('open', 'acknowledged', 'dispatched');
CREATE INDEX alerts_open_updated ON alerts (updated_at DESC, id DESC)
    WHERE state IN ('open', 'acknowledged', 'dispatched');
CREATE INDEX alerts_credit_code ON alerts (credit_code text_pattern_ops);
CREATE INDEX tasks_lead_due ON tasks (lead_department, due_at) WHERE status <> 'done';
