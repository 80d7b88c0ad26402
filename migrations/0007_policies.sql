-- Policies as versioned data. A version is a document (thresholds, the outcome of each risk
-- signal, the suspicious-face outcome, deadlines); it never changes once stored. One version is
-- active, at most one is in shadow (evaluated beside the live one on new decisions).
CREATE TABLE policy_versions (
    version         text PRIMARY KEY,
    document        jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'shadow', 'active', 'retired')),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    shadowed_at     timestamptz,
    published_by    text,
    published_at    timestamptz
);

CREATE UNIQUE INDEX policy_versions_one_active_idx ON policy_versions (status) WHERE status = 'active';
CREATE UNIQUE INDEX policy_versions_one_shadow_idx ON policy_versions (status) WHERE status = 'shadow';

-- A version's document never changes.
CREATE FUNCTION policy_document_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.document IS DISTINCT FROM OLD.document OR NEW.version IS DISTINCT FROM OLD.version THEN
        RAISE EXCEPTION 'policy version % cannot be changed', OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER policy_versions_fixed BEFORE UPDATE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION policy_document_is_fixed();

-- The verdict a shadow version would have given, stored beside the live decision.
CREATE TABLE shadow_verdicts (
    decision_id     uuid PRIMARY KEY REFERENCES decisions (id),
    version         text NOT NULL REFERENCES policy_versions (version),
    outcome         text NOT NULL CHECK (outcome IN ('approved', 'review', 'retry', 'rejected')),
    reasons         jsonb NOT NULL,
    reason_codes    text[] NOT NULL,
    live_outcome    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX shadow_verdicts_version_idx ON shadow_verdicts (version, created_at);

DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE ON policy_versions TO veredito_app';
    EXECUTE 'GRANT SELECT, INSERT ON shadow_verdicts TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on policy_versions and shadow_verdicts to veredito_app; grant by hand';
END;
$$;
