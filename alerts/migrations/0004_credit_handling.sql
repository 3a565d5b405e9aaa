-- Credit-tiered handling (docs/rules.md): an on-site inspection task of one department, and
-- the escalation of alerts left unacknowledged past their credit grade's time.
ALTER TABLE tasks DROP CONSTRAINT tasks_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_check CHECK (kind IN ('remote', 'onsite', 'joint'));

-- One escalation per alert episode: a reopened alert may escalate again (reopen_count).
CREATE TABLE alert_escalations (
    alert_id bigint NOT NULL REFERENCES alerts (id),
    reopen_count integer NOT NULL,
    at timestamptz NOT NULL,
    credit_grade text NOT NULL,
    after_s double precision NOT NULL,
    departments text[] NOT NULL,
    PRIMARY KEY (alert_id, reopen_count)
);
