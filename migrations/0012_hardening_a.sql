-- Hardening (issue 23, first part).

-- The person's statement (LGPD Art. 20) rests sealed in its review case only: review events in
-- the callback outbox are stored without it and get it back from the case at each delivery.
-- Events written before this carried it in the clear; they lose it here (one still pending gets
-- it back from its case when delivered).
UPDATE callbacks
   SET body = jsonb_set(body, '{data,statement}', 'null'::jsonb)
 WHERE type IN ('review.opened', 'review.resolved')
   AND jsonb_typeof(body #> '{data,statement}') = 'string';

-- ---- The service's role changes only what legitimately changes ----------------------------
--
-- veredito_app (0003) had UPDATE on every column of the provider-call log, of review cases
-- and of policy versions. Now: INSERT and SELECT where the record must not change, UPDATE on
-- the columns the flow moves, and functions with the owner's rights (SECURITY DEFINER, granted
-- to veredito_app alone) for the few writes that are part of a record: a case's resolution, a
-- version's publication and retention's erasures. Triggers hold what privileges cannot say
-- (a resolved case stays resolved; only a publication changes the active version), for the
-- owner as well.

-- Whether `reviewer` made the decision a case opened at the person's request contests (LGPD
-- Art. 20): such a case is for another reviewer. Used by the claim and by the resolution.
CREATE FUNCTION review_case_contested_by(p_opened_by text, p_decision_id uuid, p_reviewer text)
RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
    SELECT p_opened_by = 'subject_request'
       AND EXISTS (SELECT 1 FROM decisions d WHERE d.id = p_decision_id AND d.reviewer = p_reviewer)
$$;

-- Resolves a case held by `reviewer`, once; no row when it is not theirs to resolve.
CREATE FUNCTION resolve_review_case(p_id uuid, p_reviewer text, p_outcome text, p_note text,
                                    p_decision_id uuid)
RETURNS SETOF review_cases LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE review_cases c
       SET status = 'resolved', resolved_at = now(), resolution_outcome = p_outcome,
           resolution_note = p_note, resolution_reviewer = p_reviewer,
           resolution_decision_id = p_decision_id
     WHERE c.id = p_id AND c.status = 'claimed' AND c.assignee = p_reviewer
       AND NOT review_case_contested_by(c.opened_by, c.decision_id, p_reviewer)
    RETURNING c.*
$$;

-- A resolved case is a record: nothing of it changes but the erasure of the statement.
CREATE FUNCTION review_case_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'resolved'
       AND (to_jsonb(NEW) - 'statement_key_id' - 'statement_ciphertext'
                IS DISTINCT FROM to_jsonb(OLD) - 'statement_key_id' - 'statement_ciphertext'
            OR NEW.statement_ciphertext IS NOT NULL AND NEW.statement_ciphertext IS DISTINCT FROM OLD.statement_ciphertext
            OR NEW.statement_key_id IS NOT NULL AND NEW.statement_key_id IS DISTINCT FROM OLD.statement_key_id) THEN
        RAISE EXCEPTION 'UPDATE of resolved case % is not allowed: a resolution is final', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER review_cases_final BEFORE UPDATE ON review_cases
    FOR EACH ROW EXECUTE FUNCTION review_case_is_final();

-- A version's document, who created it and who published it never change; the publisher is not
-- its creator (four eyes); and which version is active changes only by a publication, which
-- runs with the owner's rights (publish_policy_version). Replaces 0007's document-only rule.
CREATE FUNCTION policy_version_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.document IS DISTINCT FROM OLD.document OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.created_by IS DISTINCT FROM OLD.created_by
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'policy version % cannot be changed', OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.published_by IS NOT NULL
       AND (NEW.published_by IS DISTINCT FROM OLD.published_by
            OR NEW.published_at IS DISTINCT FROM OLD.published_at) THEN
        RAISE EXCEPTION 'the publication of policy version % is not allowed to change', OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.published_by IS NOT NULL AND NEW.published_by = NEW.created_by
       AND OLD.published_by IS NULL THEN
        RAISE EXCEPTION 'policy version % is not allowed to be published by its creator', OLD.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (OLD.status = 'active') <> (NEW.status = 'active')
       AND current_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
        RAISE EXCEPTION 'changing the active policy version is not allowed but by publishing one'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER policy_versions_fixed ON policy_versions;
CREATE TRIGGER policy_versions_fixed BEFORE UPDATE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION policy_version_is_fixed();
DROP FUNCTION policy_document_is_fixed();

-- Makes `p_version` (a draft or in shadow) the active version, published by `p_by`, and retires
-- the one that was; refuses its creator.
CREATE FUNCTION publish_policy_version(p_version text, p_by text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM 1 FROM policy_versions
      WHERE version = p_version AND status IN ('draft', 'shadow') AND created_by <> p_by
      FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'policy version % cannot be published by %', p_version, p_by
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE policy_versions SET status = 'retired' WHERE status = 'active';
    UPDATE policy_versions SET status = 'active', published_by = p_by, published_at = now()
     WHERE version = p_version;
END;
$$;

-- Retention: the bodies and text of provider calls older than `p_days`, up to `p_limit` of
-- them; answers how many were erased.
CREATE FUNCTION erase_provider_call_text(p_days integer, p_limit bigint)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH erased AS (
        UPDATE provider_calls SET request = NULL, response = NULL, error = NULL
         WHERE id IN (SELECT id FROM provider_calls
                       WHERE created_at < now() - make_interval(days => p_days)
                         AND (request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL)
                       ORDER BY created_at LIMIT p_limit)
        RETURNING 1)
    SELECT count(*) FROM erased
$$;

-- ---- The phone's coordinates leave the decision's record with the rest ----------------------
--
-- A decision keeps the risk signals the policy read, coordinates included (reduced to a region,
-- two decimals). They are personal data and go when retention erases the onboarding's; no rule
-- reads them. Decisions stay append-only: their trigger now lets through exactly one change,
-- the removal of the coordinates from the evidence, and nothing else, for the owner as well;
-- the service's role has no UPDATE on decisions, so only retention's function makes it.

CREATE FUNCTION erase_coordinates(evidence jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT evidence #- '{risk_signals,device_latitude}' #- '{risk_signals,device_longitude}'
$$;

CREATE FUNCTION decision_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.evidence = erase_coordinates(OLD.evidence)
       AND to_jsonb(NEW) - 'evidence' = to_jsonb(OLD) - 'evidence' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % is not allowed: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER decisions_append_only ON decisions;
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION decision_is_fixed();

-- Retention: the personal data of up to `p_limit` onboardings decided more than `p_days` ago
-- (ciphertext, key id, CPF hash, sealed selfie, the phone's coordinates in the onboarding and
-- in its decisions' evidence, the review statements), each erasure written to the timeline;
-- answers the onboardings erased. The decisions, their reasons and the rest of their evidence
-- stay.
CREATE FUNCTION erase_expired_personal_data(p_days integer, p_limit bigint)
RETURNS SETOF uuid LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH due AS (
        SELECT o.id FROM onboardings o
         WHERE o.pii_erased_at IS NULL AND o.decided_at IS NOT NULL
           AND o.decided_at < now() - make_interval(days => p_days)
           AND EXISTS (SELECT 1 FROM decisions d
                        WHERE d.onboarding_id = o.id
                          AND d.decided_at < now() - make_interval(days => p_days))
         ORDER BY o.decided_at
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED
    ), erased AS (
        UPDATE onboardings o
           SET pii_ciphertext = NULL, pii_key_id = NULL, cpf_hash = NULL, pii_erased_at = now(),
               selfie_key_id = NULL, selfie_ciphertext = NULL, updated_at = now(),
               device = o.device #- '{risk_signals,device_latitude}' #- '{risk_signals,device_longitude}'
          FROM due WHERE o.id = due.id
        RETURNING o.id
    ), statements AS (
        UPDATE review_cases c SET statement_key_id = NULL, statement_ciphertext = NULL
          FROM erased WHERE c.onboarding_id = erased.id
        RETURNING c.id
    ), coordinates AS (
        UPDATE decisions d SET evidence = erase_coordinates(d.evidence)
          FROM erased
         WHERE d.onboarding_id = erased.id AND d.evidence <> erase_coordinates(d.evidence)
        RETURNING d.id
    )
    INSERT INTO onboarding_events (onboarding_id, kind, detail)
    SELECT id, 'pii_erased', jsonb_build_object('retention_days', p_days) FROM erased
    RETURNING onboarding_id
$$;

-- Functions are executable by PUBLIC unless revoked: these run with the owner's rights.
REVOKE ALL ON FUNCTION resolve_review_case(uuid, text, text, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION publish_policy_version(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION erase_provider_call_text(integer, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION erase_expired_personal_data(integer, bigint) FROM PUBLIC;

-- Where the migrating role cannot grant, a DBA repeats this (docs/audit.md). A table-level
-- REVOKE takes the column grants with it, so the column grants come after.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
        EXECUTE 'REVOKE UPDATE ON provider_calls FROM veredito_app';
        EXECUTE 'REVOKE UPDATE ON review_cases FROM veredito_app';
        EXECUTE 'GRANT UPDATE (status, assignee, claimed_at) ON review_cases TO veredito_app';
        EXECUTE 'REVOKE UPDATE ON policy_versions FROM veredito_app';
        EXECUTE 'GRANT UPDATE (status, shadowed_at) ON policy_versions TO veredito_app';
        EXECUTE 'REVOKE UPDATE ON callbacks FROM veredito_app';
        EXECUTE 'GRANT UPDATE (status, attempts, last_status, last_error, created_at, delivered_at,
                               failed_at) ON callbacks TO veredito_app';
        EXECUTE 'GRANT EXECUTE ON FUNCTION resolve_review_case(uuid, text, text, text, uuid),
                 publish_policy_version(text, text), erase_provider_call_text(integer, bigint),
                 erase_expired_personal_data(integer, bigint) TO veredito_app';
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;
