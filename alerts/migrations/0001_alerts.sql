-- Alerts on subjects, their clues and timeline, tasks (remote supervision and joint
-- inspection), double-random draws, silences, the notification outbox, the live event feed
-- and the hash-chained audit log. Clue rows are copied from the typed clue events alerts
-- receive, so this package does not depend on the rules package's tables.

-- One alert is one episode on one subject. `subject_key` is the credit code, or
-- 'device:<id>' for clues on a device bound to no subject.
CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    subject_key text NOT NULL,
    credit_code text,
    state text NOT NULL
        CHECK (state IN ('open', 'acknowledged', 'dispatched', 'resolved', 'dismissed')),
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    departments text[] NOT NULL,
    grid text NOT NULL DEFAULT '',
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    dispatched_at timestamptz,
    closed_at timestamptz,
    closed_by text,
    dismiss_reason text CHECK (dismiss_reason IN
        ('false_positive', 'device_fault', 'permitted_activity', 'duplicate', 'other')),
    close_note text NOT NULL DEFAULT '',
    -- Set while every clue of the alert is resolved: the start of the quiet period.
    clues_resolved_at timestamptz,
    last_notified_at timestamptz,
    reopen_count integer NOT NULL DEFAULT 0,
    CONSTRAINT alerts_closed CHECK (
        (state IN ('resolved', 'dismissed')) = (closed_at IS NOT NULL)),
    CONSTRAINT alerts_dismissed CHECK ((state = 'dismissed') = (dismiss_reason IS NOT NULL))
);
-- The invariant: at most one open alert per subject, however clues arrive.
CREATE UNIQUE INDEX alerts_one_open ON alerts (subject_key)
    WHERE state IN ('open', 'acknowledged', 'dispatched');
CREATE INDEX alerts_departments ON alerts USING gin (departments);
CREATE INDEX alerts_opened ON alerts (opened_at DESC);
CREATE INDEX alerts_subject_closed ON alerts (subject_key, closed_at DESC);

CREATE TABLE alert_clues (
    clue_id bigint PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id),
    fingerprint text NOT NULL,
    rule_id text NOT NULL,
    rule_version integer NOT NULL,
    title text NOT NULL,
    department text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL CHECK (status IN ('firing', 'resolved')),
    device_ids text[] NOT NULL,
    evidence_ids text[] NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    summary text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX alert_clues_alert ON alert_clues (alert_id);

CREATE TABLE alert_timeline (
    id bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id),
    at timestamptz NOT NULL,
    actor text NOT NULL,
    kind text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_timeline_alert ON alert_timeline (alert_id, id);

-- Remote supervision (one department) or joint inspection (a lead and participants).
CREATE TABLE tasks (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('remote', 'joint')),
    source text NOT NULL CHECK (source IN ('alert', 'draw')),
    subject_key text NOT NULL,
    credit_code text,
    lead_department text NOT NULL,
    departments text[] NOT NULL,
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'major', 'critical')),
    status text NOT NULL CHECK (status IN ('planned', 'in_progress', 'done')),
    due_at timestamptz NOT NULL,
    findings text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL,
    started_at timestamptz,
    done_at timestamptz,
    draw_period text,
    CONSTRAINT tasks_done CHECK ((status = 'done') = (done_at IS NOT NULL))
);
-- At most one open joint inspection per subject: later alerts attach to it.
CREATE UNIQUE INDEX tasks_one_open_joint ON tasks (subject_key)
    WHERE kind = 'joint' AND status IN ('planned', 'in_progress');
CREATE INDEX tasks_departments ON tasks USING gin (departments);

CREATE TABLE task_alerts (
    task_id bigint NOT NULL REFERENCES tasks (id),
    alert_id bigint NOT NULL REFERENCES alerts (id),
    attached_at timestamptz NOT NULL,
    PRIMARY KEY (task_id, alert_id)
);
CREATE INDEX task_alerts_alert ON task_alerts (alert_id);

-- Double-random draws (双随机): each department's random sample of its subjects per period.
CREATE TABLE draws (
    id bigserial PRIMARY KEY,
    department text NOT NULL REFERENCES departments (code),
    period text NOT NULL CHECK (period ~ '^[0-9A-Za-z_.-]{1,32}$'),
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    method jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX draws_period ON draws (period, department);

CREATE TABLE draw_subjects (
    draw_id bigint NOT NULL REFERENCES draws (id),
    credit_code text NOT NULL,
    PRIMARY KEY (draw_id, credit_code)
);

CREATE TABLE silences (
    id bigserial PRIMARY KEY,
    department text NOT NULL REFERENCES departments (code),
    matcher text NOT NULL CHECK (matcher IN ('subject', 'rule', 'device', 'department')),
    value text NOT NULL CHECK (value <> ''),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    created_by text NOT NULL,
    reason text NOT NULL CHECK (btrim(reason) <> ''),
    created_at timestamptz NOT NULL,
    expired_at timestamptz,
    expired_by text,
    CONSTRAINT silences_period CHECK (ends_at > starts_at)
);
CREATE INDEX silences_active ON silences (ends_at) WHERE expired_at IS NULL;

-- Notifications are written here in the transaction of the change that causes them, then
-- delivered by the outbox worker: a crash between the two loses nothing.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    alert_id bigint REFERENCES alerts (id),
    subject_key text NOT NULL,
    route text NOT NULL,
    event text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'suppressed')),
    suppressed_by text,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error text,
    created_at timestamptz NOT NULL,
    sent_at timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_subject_route ON outbox (subject_key, route, created_at DESC);

-- The live feed behind GET /api/v1/stream: ids are the SSE event ids (Last-Event-ID).
CREATE TABLE alert_events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL CHECK (kind IN ('alert', 'clue', 'task')),
    entity_id bigint NOT NULL,
    departments text[] NOT NULL,
    payload jsonb NOT NULL
);
CREATE INDEX alert_events_departments ON alert_events USING gin (departments);

-- Full-process record (全过程记录): append-only and hash-chained. `payload` is kept as the
-- exact canonical JSON text that was hashed, so verification needs no re-serialisation.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    at timestamptz NOT NULL,
    actor text NOT NULL,
    entity text NOT NULL,
    entity_id text NOT NULL,
    action text NOT NULL,
    payload text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, seq);

CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();
