-- Single sign-on attempts in flight: the state sent to the provider with its PKCE verifier,
-- nonce and where to go afterwards; used once, within minutes.
CREATE TABLE oidc_logins (
    state text PRIMARY KEY,
    nonce text NOT NULL,
    code_verifier text NOT NULL,
    next text NOT NULL DEFAULT '/',
    created_at timestamptz NOT NULL DEFAULT now()
);
