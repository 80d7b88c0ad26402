-- Every audit search, explanation and export is itself recorded: who asked, which filters (a
-- CPF only as its keyed hash and masked form), when. Auditors read it through
-- GET /v1/audit-searches; nobody changes it.
CREATE TABLE audit_searches (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    caller      text NOT NULL,
    endpoint    text NOT NULL,
    filters     jsonb NOT NULL
);
CREATE INDEX audit_searches_at_idx ON audit_searches (at DESC, id DESC);
CREATE TRIGGER audit_searches_append_only BEFORE UPDATE OR DELETE ON audit_searches
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER audit_searches_no_truncate BEFORE TRUNCATE ON audit_searches
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- The timeline is a record as well: appended to, never changed.
CREATE TRIGGER onboarding_events_append_only BEFORE UPDATE OR DELETE ON onboarding_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Old webhook deliveries are deleted by retention (retention.webhook_days), and the bodies and
-- error text of old provider calls erased (retention.pii_days).
CREATE INDEX unico_webhooks_received_idx ON unico_webhooks (received_at);
CREATE INDEX provider_calls_unerased_idx ON provider_calls (created_at)
    WHERE request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL;

-- The service's role: the timeline and the search log get INSERT and SELECT only; webhooks also
-- DELETE and provider calls also UPDATE, both for retention. Where the migrating role cannot
-- grant, a DBA repeats this (docs/audit.md).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
        EXECUTE 'GRANT SELECT, INSERT ON audit_searches TO veredito_app';
        EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE audit_searches_id_seq TO veredito_app';
        EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON onboarding_events FROM veredito_app';
        EXECUTE 'REVOKE DELETE, TRUNCATE ON provider_calls FROM veredito_app';
        EXECUTE 'REVOKE UPDATE, TRUNCATE ON unico_webhooks FROM veredito_app';
        EXECUTE 'GRANT DELETE ON unico_webhooks TO veredito_app';
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;
