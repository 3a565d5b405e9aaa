-- HJ 212 data loggers and the password (PW) each must send; the MN is the device id.
CREATE TABLE hj212_loggers (
    mn text PRIMARY KEY,
    -- sha256 of "MN:PW": HJ 212 sends PW in clear, but it need not be kept in clear.
    password_sha256 text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by text NOT NULL
);
