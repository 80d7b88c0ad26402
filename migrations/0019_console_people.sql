-- Console sign-in through the bank's identity provider (OpenID Connect).
--
-- A session opened by a person carries the person: the ID token's subject and the name it gave.
-- `key_name` then holds the name recorded as the reviewer, `oidc:<subject> (<name>)`. Sessions
-- opened with an API key leave both empty.
ALTER TABLE console_sessions
    ADD COLUMN subject     text,
    ADD COLUMN person_name text;

-- Sign-ins on their way through the provider: the browser holds a random value in a cookie,
-- from which the request's state, nonce and PKCE verifier are derived; only its SHA-256 is kept
-- here, so nothing in this table opens anything. A row is taken once, by the callback, and is
-- worth nothing past expires_at.
CREATE TABLE console_sign_ins (
    id_sha256   bytea PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX console_sign_ins_expiry_idx ON console_sign_ins (expires_at);

DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT, DELETE ON console_sign_ins TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on console_sign_ins to veredito_app; grant by hand';
END;
$$;
