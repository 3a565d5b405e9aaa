-- Clues: what rules raise. One row per episode of a stream (fingerprint = rule + device or
-- subject); started_at/ended_at are event time. The partial unique index is the database's
-- half of idempotency: two engines, or a redelivered reading, can never open a second clue
-- for the same episode or two open clues for one fingerprint.
CREATE TABLE clues (
    id bigserial PRIMARY KEY,
    fingerprint text NOT NULL,
    rule_id text NOT NULL,
    rule_version integer NOT NULL,
    title text NOT NULL,
    department text NOT NULL REFERENCES departments (code),
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    status text NOT NULL CHECK (status IN ('firing', 'resolved')),
    withdrawn boolean NOT NULL DEFAULT false,
    credit_code text,
    device_ids text[] NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    -- The readings (device, metric, time, value) or window aggregates that made the clue.
    trigger jsonb NOT NULL,
    evidence_ids text[] NOT NULL DEFAULT '{}',
    summary text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clues_episode UNIQUE (fingerprint, started_at),
    CONSTRAINT clues_ended CHECK ((status = 'resolved') = (ended_at IS NOT NULL))
);
CREATE UNIQUE INDEX clues_one_open ON clues (fingerprint) WHERE status = 'firing';
CREATE INDEX clues_department_started ON clues (department, started_at DESC);
CREATE INDEX clues_credit_code ON clues (credit_code, started_at DESC);
CREATE INDEX clues_rule ON clues (rule_id, started_at DESC);
