-- Departments (seeded from api/departments.yaml) and the API keys bound to them.
CREATE TABLE departments (
    code text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,15}$'),
    name text NOT NULL,
    name_zh text NOT NULL,
    domains text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE api_keys (
    id bigserial PRIMARY KEY,
    -- sha256 of the key: keys are 32 random bytes, so a fast hash is enough and lets a
    -- lookup be one index probe.
    key_hash text NOT NULL UNIQUE,
    prefix text NOT NULL,
    department text NOT NULL REFERENCES departments (code),
    role text NOT NULL CHECK (role IN ('viewer', 'officer', 'admin')),
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
