-- Decisions partitioned by the month they were made (UTC). Each month's indexes are a month's
-- size, a search bounded in time reads only the months it names, and a month past its record
-- period leaves as one partition (DROP or DETACH by the owner) instead of row by row, which the
-- append-only triggers forbid anyway.
--
-- A unique key of a partitioned table must hold the partition key, so a decision is known by
-- (id, decided_at) and the tables pointing at one carry its decided_at too. Ids stay uuid v4:
-- unique without the database having to check it across months.

-- 1. The references to decisions carry the decision's time, and let go of the old table.
ALTER TABLE review_cases ADD COLUMN decision_decided_at timestamptz;
UPDATE review_cases c SET decision_decided_at = d.decided_at FROM decisions d WHERE d.id = c.decision_id;
ALTER TABLE review_cases
    ALTER COLUMN decision_decided_at SET NOT NULL,
    DROP CONSTRAINT review_cases_decision_id_fkey;

ALTER TABLE shadow_verdicts ADD COLUMN decided_at timestamptz;
UPDATE shadow_verdicts s SET decided_at = d.decided_at FROM decisions d WHERE d.id = s.decision_id;
ALTER TABLE shadow_verdicts
    ALTER COLUMN decided_at SET NOT NULL,
    DROP CONSTRAINT shadow_verdicts_decision_id_fkey;

-- 2. The old table steps aside; its index names are taken by the new one's.
ALTER TABLE decisions RENAME TO decisions_unpartitioned;
ALTER TABLE decisions_unpartitioned RENAME CONSTRAINT decisions_pkey TO decisions_unpartitioned_pkey;
DROP INDEX decisions_decided_idx, decisions_outcome_decided_idx, decisions_policy_decided_idx,
    decisions_reason_codes_idx, decisions_onboarding_idx;

-- 3. The same columns, defaults, checks and compression, partitioned by decided_at; then the
-- keys, triggers and indexes.
CREATE TABLE decisions (
    LIKE decisions_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION INCLUDING STORAGE
) PARTITION BY RANGE (decided_at);
ALTER TABLE decisions
    ADD CONSTRAINT decisions_pkey PRIMARY KEY (id, decided_at),
    ADD CONSTRAINT decisions_onboarding_id_fkey FOREIGN KEY (onboarding_id) REFERENCES onboardings (id);

CREATE INDEX decisions_decided_idx ON decisions (decided_at DESC, id DESC);
CREATE INDEX decisions_outcome_decided_idx ON decisions (outcome, decided_at DESC, id DESC);
CREATE INDEX decisions_policy_decided_idx ON decisions (policy_version, decided_at DESC, id DESC);
CREATE INDEX decisions_reason_codes_idx ON decisions USING gin (reason_codes);
CREATE INDEX decisions_onboarding_idx ON decisions (onboarding_id, decided_at DESC);

-- Row triggers reach every partition, those made later too; TRUNCATE of one partition does not
-- pass through its parent, so each partition gets that trigger of its own.
CREATE TRIGGER decisions_append_only
    BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER decisions_no_truncate
    BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Whatever no month holds lands here, so a decision is never refused for want of a partition.
-- The months are made ahead of time, so this stays empty but for decisions dated before the
-- first month made.
CREATE TABLE decisions_default PARTITION OF decisions DEFAULT;
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions_default
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Makes the month partitions from the month of `since` to `ahead` months after the current
-- one, those not there yet, and answers how many it made. The service calls it at start and
-- from its retention pass; it runs with its owner's rights (the service's role does not own
-- decisions), one caller at a time. A month the default partition already holds rows of is
-- left to it, with a notice, rather than failing the others.
CREATE FUNCTION ensure_decision_partitions(since timestamptz DEFAULT now(), ahead integer DEFAULT 2)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    month timestamptz := date_trunc('month', greatest(least(since, now()), now() - interval '30 years'));
    last  timestamptz := date_trunc('month', now()) + make_interval(months => least(greatest(ahead, 0), 24));
    name  text;
    made  integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('veredito.ensure_decision_partitions'));
    WHILE month <= last LOOP
        name := 'decisions_' || to_char(month, 'YYYY_MM');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF decisions FOR VALUES FROM (%L) TO (%L)',
                               name, month, month + interval '1 month');
                EXECUTE format('CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON %I
                                FOR EACH STATEMENT EXECUTE FUNCTION forbid_change()', name);
                made := made + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'decisions_default holds decisions of %; that month stays there', to_char(month, 'YYYY-MM');
            END;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN made;
END;
$$;
REVOKE ALL ON FUNCTION ensure_decision_partitions(timestamptz, integer) FROM PUBLIC;

-- 4. The months the stored decisions fall in, and the two after this one; then the rows move.
SELECT ensure_decision_partitions(coalesce((SELECT min(decided_at) FROM decisions_unpartitioned), now()), 2);

INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                       evidence, evaluations, decided_at, decided_by, reviewer, note)
SELECT id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
       evidence, evaluations, decided_at, decided_by, reviewer, note
  FROM decisions_unpartitioned;

DROP TABLE decisions_unpartitioned;

-- 5. The references point at the new table. A decision is never changed, but should its owner
-- ever correct one's time (triggers off, by hand), what points at it follows.
ALTER TABLE review_cases ADD CONSTRAINT review_cases_decision_fkey
    FOREIGN KEY (decision_id, decision_decided_at) REFERENCES decisions (id, decided_at)
    ON UPDATE CASCADE;
ALTER TABLE shadow_verdicts ADD CONSTRAINT shadow_verdicts_decision_fkey
    FOREIGN KEY (decision_id, decided_at) REFERENCES decisions (id, decided_at)
    ON UPDATE CASCADE;

-- 6. The application's role as before: it reads and appends decisions, changes none, and may
-- have the months made.
REVOKE UPDATE, DELETE, TRUNCATE ON decisions FROM PUBLIC;
DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT ON decisions TO veredito_app';
    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON decisions FROM veredito_app';
    EXECUTE 'GRANT EXECUTE ON FUNCTION ensure_decision_partitions(timestamptz, integer) TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on decisions to veredito_app; grant by hand (docs/audit.md)';
END;
$$;
