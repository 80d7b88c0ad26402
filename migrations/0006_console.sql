-- Sessions of the reviewers' console: the browser holds a random id in an HttpOnly cookie; the
-- database keeps only its SHA-256, whose key it signed in with, and the form token that guards
-- every change against cross-site requests.
CREATE TABLE console_sessions (
    id_sha256   bytea PRIMARY KEY,
    key_name    text NOT NULL,
    scopes      text[] NOT NULL,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT, DELETE ON console_sessions TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on console_sessions to veredito_app; grant by hand';
END;
$$;
