-- A department asking to join a subject that other departments supervise: it is linked only
-- when a supervising department's admin (or the platform admin) approves.
CREATE TABLE subject_link_requests (
    id bigserial PRIMARY KEY,
    credit_code text NOT NULL REFERENCES subjects (credit_code) ON DELETE CASCADE,
    department text NOT NULL REFERENCES departments (code),
    since timestamptz,
    until timestamptz,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'approved', 'refused')),
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_by text,
    decided_department text REFERENCES departments (code),
    decided_at timestamptz,
    reason text NOT NULL DEFAULT '',
    CONSTRAINT subject_link_requests_period CHECK (until IS NULL OR since IS NULL OR until > since)
);
CREATE UNIQUE INDEX subject_link_requests_one_pending
    ON subject_link_requests (credit_code, department) WHERE state = 'pending';
CREATE INDEX subject_link_requests_department ON subject_link_requests (department);
