-- Audit: indexes that keep every search filter fast at millions of decisions, a retention
-- erasure that also drops the CPF hash, and append-only decisions enforced by privileges as
-- well as by the trigger of 0001.

-- Newest-first keyset pagination walks this index backwards from the cursor; every filter that
-- is not selective on its own (outcome, a time range) is applied while walking it.
CREATE INDEX decisions_decided_idx ON decisions (decided_at DESC, id DESC);
-- Selective equality filters get their own index, ordered like the listing so the first page
-- is read straight off it without sorting.
CREATE INDEX decisions_outcome_decided_idx ON decisions (outcome, decided_at DESC, id DESC);
CREATE INDEX decisions_policy_decided_idx ON decisions (policy_version, decided_at DESC, id DESC);
-- reason=... is `reason_codes @> ARRAY[...]`, which only a GIN index can answer.
CREATE INDEX decisions_reason_codes_idx ON decisions USING gin (reason_codes);

CREATE INDEX onboardings_cpf_hash_idx ON onboardings (cpf_hash) WHERE cpf_hash IS NOT NULL;
CREATE INDEX onboardings_reference_idx ON onboardings (reference) WHERE reference IS NOT NULL;
CREATE INDEX onboardings_created_idx ON onboardings (created_at);

-- Retention looks for decided onboardings whose personal data is still there; once erased a
-- row leaves this index, so each run reads only what it has to erase.
CREATE INDEX onboardings_pii_retained_idx ON onboardings (decided_at)
    WHERE pii_erased_at IS NULL AND decided_at IS NOT NULL;
-- Key rotation looks for rows sealed under any key but the active one.
CREATE INDEX onboardings_pii_key_idx ON onboardings (pii_key_id) WHERE pii_key_id IS NOT NULL;

-- Retention erases the keyed CPF hash with the ciphertext: after erasure nobody should be able
-- to tell whether a given CPF was ever onboarded, so a search by CPF no longer finds the row.
ALTER TABLE onboardings ALTER COLUMN cpf_hash DROP NOT NULL;

-- Decisions are a record. The trigger of 0001 stops even the owner; privileges stop the
-- application's role before the trigger is reached. PUBLIC holds none of these by default;
-- revoking states the intent and undoes any grant made by hand.
REVOKE UPDATE, DELETE, TRUNCATE ON decisions FROM PUBLIC;

-- The role the service should connect as (docs/audit.md): a NOLOGIN group role that login
-- roles are made members of. Creating it needs CREATEROLE; where the migrating role lacks it,
-- a DBA creates the role and repeats these grants, and the migration still succeeds.
DO $$
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
            CREATE ROLE veredito_app NOLOGIN;
        END IF;
    EXCEPTION
        -- Another database of the same cluster created it at the same moment.
        WHEN duplicate_object OR unique_violation THEN NULL;
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot create role veredito_app; grant its privileges by hand (docs/audit.md)';
            RETURN;
    END;
    EXECUTE 'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO veredito_app';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO veredito_app';
    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON decisions FROM veredito_app';
    EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM veredito_app';
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;
