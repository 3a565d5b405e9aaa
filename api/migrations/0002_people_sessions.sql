-- Personal accounts, their server-side sessions and failed sign-ins (for rate limiting).
-- platform_admin is the city platform's operator: the one role that sees unbound devices.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'officer', 'admin', 'platform_admin'));

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    login text NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    department text NOT NULL REFERENCES departments (code),
    role text NOT NULL CHECK (role IN ('viewer', 'officer', 'admin', 'platform_admin')),
    -- argon2id in PHC format; NULL for people who sign in only through single sign-on.
    password_hash text,
    -- The OIDC issuer and subject a single-sign-on account is tied to.
    oidc_issuer text,
    oidc_subject text,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz,
    disabled_at timestamptz,
    UNIQUE (oidc_issuer, oidc_subject)
);

CREATE TABLE sessions (
    id bigserial PRIMARY KEY,
    -- sha256 of the cookie value (32 random bytes): a stolen table does not open sessions.
    token_hash text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id),
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE ended_at IS NULL;

CREATE TABLE login_failures (
    at timestamptz NOT NULL DEFAULT now(),
    login text NOT NULL,
    ip text NOT NULL
);
CREATE INDEX login_failures_login ON login_failures (login, at);
CREATE INDEX login_failures_ip ON login_failures (ip, at);
