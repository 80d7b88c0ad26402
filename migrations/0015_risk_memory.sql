-- Risk memory (issue 24): what ties onboardings together, the risk team's lists, and the
-- figures the list, velocity and linked-fraud rules judged.

-- ---- Link keys ------------------------------------------------------------------------------
--
-- One row per onboarding and key (cpf, device_id, phone, email): the HMAC-SHA256 under
-- pii.hash_key of the normalised value (the CPF's is its blind index, onboardings.cpf_hash).
-- `seq` is the order the rows were stored in: an onboarding writes its rows while it holds a
-- transaction-scoped advisory lock on each hash, so among the onboardings sharing a value, seq
-- is the order they counted each other in. A lookup is one range scan of link_lookup_idx.
CREATE TABLE onboarding_links (
    onboarding_id   uuid NOT NULL REFERENCES onboardings (id),
    key             text NOT NULL CHECK (key IN ('cpf', 'device_id', 'phone', 'email')),
    hash            bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (onboarding_id, key)
);
CREATE INDEX onboarding_links_lookup_idx
    ON onboarding_links (key, hash, created_at) INCLUDE (seq, onboarding_id);

-- Existing onboardings: the CPF's hash is already stored, so its link is written here. The
-- device id, phone and e-mail need the application's key (the phone and e-mail are sealed
-- too), so those are written at start-up, in batches, from this queue (store/links.rs).
INSERT INTO onboarding_links (onboarding_id, key, hash, created_at)
SELECT id, 'cpf', cpf_hash, created_at FROM onboardings
 WHERE cpf_hash IS NOT NULL
 ORDER BY created_at, id;

CREATE TABLE onboarding_links_backfill (
    onboarding_id   uuid PRIMARY KEY REFERENCES onboardings (id)
);
INSERT INTO onboarding_links_backfill (onboarding_id)
SELECT id FROM onboardings WHERE pii_erased_at IS NULL;

-- The figures the risk-memory rules were judged on when the onboarding was received (null when
-- no version in force had such a rule): later steps judge the same figures.
ALTER TABLE onboardings ADD COLUMN memory jsonb;

-- Link keys are personal data: they go when retention (or a subject's erasure) erases the
-- onboarding's.
CREATE FUNCTION erase_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM onboarding_links WHERE onboarding_id = NEW.id;
    DELETE FROM onboarding_links_backfill WHERE onboarding_id = NEW.id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER onboardings_erase_links AFTER UPDATE OF pii_erased_at ON onboardings
    FOR EACH ROW WHEN (OLD.pii_erased_at IS NULL AND NEW.pii_erased_at IS NOT NULL)
    EXECUTE FUNCTION erase_links();

-- ---- Lists ------------------------------------------------------------------------------------

CREATE TABLE lists (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    key         text NOT NULL CHECK (key IN ('cpf', 'device_id', 'phone', 'email')),
    note        text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every addition and removal, never changed: a value is listed when its latest row is an
-- addition not expired. Values only as their keyed hash and a mask.
CREATE TABLE list_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    list_name   text NOT NULL REFERENCES lists (name),
    hash        bytea NOT NULL,
    masked      text NOT NULL,
    action      text NOT NULL CHECK (action IN ('added', 'removed')),
    reason      text NOT NULL,
    expires_at  timestamptz,
    by          text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX list_entries_value_idx ON list_entries (list_name, hash, id DESC);

CREATE TRIGGER list_entries_append_only BEFORE UPDATE OR DELETE ON list_entries
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER list_entries_no_truncate BEFORE TRUNCATE ON list_entries
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
        EXECUTE 'GRANT SELECT, INSERT, DELETE ON onboarding_links, onboarding_links_backfill TO veredito_app';
        EXECUTE 'GRANT SELECT, INSERT ON lists, list_entries TO veredito_app';
        EXECUTE 'GRANT UPDATE (memory) ON onboardings TO veredito_app';
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;
