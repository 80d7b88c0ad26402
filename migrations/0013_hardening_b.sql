-- What a provider wrote in its own words (an error title that names the person, an answer that
-- echoes the request) is no longer kept in clear: `response` keeps only the fields veredito
-- parses and `error` only a code, and the answer as the provider worded it is sealed with the
-- personal data's key (AES-256-GCM, bound to the call's subject), shown only to keys with
-- pii:read and erased by retention with the rest.
ALTER TABLE provider_calls
    ADD COLUMN answer_key_id text,
    ADD COLUMN answer_ciphertext bytea;
ALTER TABLE provider_calls ALTER COLUMN answer_ciphertext SET STORAGE EXTERNAL;

-- Calls stored before this migration kept the provider's text in clear, in `response` and
-- `error`; it cannot be sealed from SQL, so it is erased. Their provider, operation, status,
-- time and redacted request stay.
UPDATE provider_calls SET response = NULL, error = NULL
 WHERE response IS NOT NULL OR error IS NOT NULL;

-- Retention's erasure of old calls (0012's function, which the service's role calls) takes the
-- sealed answer with the rest.
CREATE OR REPLACE FUNCTION erase_provider_call_text(p_days integer, p_limit bigint)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH erased AS (
        UPDATE provider_calls SET request = NULL, response = NULL, error = NULL,
                                  answer_key_id = NULL, answer_ciphertext = NULL
         WHERE id IN (SELECT id FROM provider_calls
                       WHERE created_at < now() - make_interval(days => p_days)
                         AND (request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL
                              OR answer_ciphertext IS NOT NULL)
                       ORDER BY created_at LIMIT p_limit)
        RETURNING 1)
    SELECT count(*) FROM erased
$$;

-- Webhooks without unico's secret leave one row a minute, with how many came, instead of a row
-- each: a flood of forged deliveries costs a bounded table (and past
-- unico.forged_webhooks_per_second, not even an UPDATE). Deleted by retention with unico's
-- deliveries (retention.webhook_days).
CREATE TABLE forged_webhooks (
    minute      timestamptz PRIMARY KEY,
    deliveries  integer NOT NULL,
    last_at     timestamptz NOT NULL
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON forged_webhooks TO veredito_app';
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;
