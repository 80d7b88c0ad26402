-- The person's rights (LGPD Art. 18 and 19): requests to know what is held and to have what
-- nothing requires erased, kept as records. A request, its answer and each erasure are rows
-- written once; none is changed in place, so the request as received, who answered it and
-- when, and what was erased where stay as evidence for the data-protection authority.

CREATE TABLE subject_requests (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('access', 'erasure')),
    -- Whose request: the CPF's keyed hash finds the person's onboardings without unsealing any;
    -- the CPF itself is sealed under the request id for the officer's report.
    cpf_hash        bytea NOT NULL,
    cpf_key_id      text NOT NULL,
    cpf_ciphertext  bytea NOT NULL,
    note            text,
    received_at     timestamptz NOT NULL,
    -- Art. 19 II: a complete statement within 15 days of the request.
    due_at          timestamptz NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (due_at = received_at + interval '15 days')
);
CREATE INDEX subject_requests_received_idx ON subject_requests (received_at DESC, id DESC);
CREATE INDEX subject_requests_cpf_idx ON subject_requests (cpf_hash);

-- Who answered a request and when: the first report read with pii:read, or the erasure itself.
-- One answer a request; later reads are access records (audit_searches), not answers.
CREATE TABLE subject_request_answers (
    request_id      uuid PRIMARY KEY REFERENCES subject_requests (id),
    answered_at     timestamptz NOT NULL DEFAULT now(),
    answered_by     text NOT NULL,
    how             text NOT NULL CHECK (how IN ('report', 'erasure'))
);

-- The onboardings an erasure request found, and the state each was in. One still processing
-- (or waiting for a reviewer) is erased when it is decided: until then it has no row in
-- subject_erasures.
CREATE TABLE subject_request_onboardings (
    request_id      uuid NOT NULL REFERENCES subject_requests (id),
    onboarding_id   uuid NOT NULL REFERENCES onboardings (id),
    found_state     text NOT NULL,
    PRIMARY KEY (request_id, onboarding_id)
);
CREATE INDEX subject_request_onboardings_onboarding_idx ON subject_request_onboardings (onboarding_id);

-- What one erasure removed from one onboarding: each category, where it was stored, when.
CREATE TABLE subject_erasures (
    request_id      uuid NOT NULL REFERENCES subject_requests (id),
    onboarding_id   uuid NOT NULL REFERENCES onboardings (id),
    erased_at       timestamptz NOT NULL DEFAULT now(),
    erased          jsonb NOT NULL,
    PRIMARY KEY (request_id, onboarding_id)
);
CREATE INDEX subject_erasures_onboarding_idx ON subject_erasures (onboarding_id);

CREATE TRIGGER subject_requests_append_only BEFORE UPDATE OR DELETE ON subject_requests
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER subject_request_answers_append_only BEFORE UPDATE OR DELETE ON subject_request_answers
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER subject_request_onboardings_append_only BEFORE UPDATE OR DELETE ON subject_request_onboardings
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER subject_erasures_append_only BEFORE UPDATE OR DELETE ON subject_erasures
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER subject_requests_no_truncate BEFORE TRUNCATE ON subject_requests
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
CREATE TRIGGER subject_erasures_no_truncate BEFORE TRUNCATE ON subject_erasures
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Erases, for the request `p_request`, what no legal basis keeps of the decided onboarding
-- `p_onboarding`: its sealed personal data becomes `p_pii_ciphertext` (the service re-seals it
-- with the CPF alone: SQL cannot open it), the selfie, the phone's coordinates (onboarding and
-- decisions' evidence), the review statements (cases and the callback outbox), and the
-- provider calls' sealed answers and request bodies. `p_person_fields` names the fields the
-- re-sealing removed. The decisions, their reasons and the rest of their evidence, the CPF hash
-- and the device identifiers stay. Answers the row written to subject_erasures, or nothing when
-- the onboarding is not decided or this request already erased it.
CREATE FUNCTION erase_subject_personal_data(p_request uuid, p_onboarding uuid, p_pii_key_id text,
                                            p_pii_ciphertext bytea, p_person_fields text[])
RETURNS SETOF subject_erasures LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    o onboardings%ROWTYPE;
    erased jsonb := '[]'::jsonb;
    field text;
    n_statements bigint;
    n_outbox bigint;
    n_answers bigint;
    n_requests bigint;
    n_decisions bigint;
    had_coordinates boolean;
BEGIN
    SELECT * INTO o FROM onboardings WHERE id = p_onboarding AND state = 'decided' FOR UPDATE;
    IF NOT FOUND OR EXISTS (SELECT 1 FROM subject_erasures
                             WHERE request_id = p_request AND onboarding_id = p_onboarding) THEN
        RETURN;
    END IF;
    FOREACH field IN ARRAY coalesce(p_person_fields, '{}') LOOP
        erased := erased || jsonb_build_object('category', field,
                                               'erased_from', jsonb_build_array('onboardings.pii_ciphertext'));
    END LOOP;
    IF o.selfie_ciphertext IS NOT NULL THEN
        erased := erased || jsonb_build_object('category', 'selfie',
                                               'erased_from', jsonb_build_array('onboardings.selfie_ciphertext'));
    END IF;
    had_coordinates := o.device <> erase_coordinates(o.device);
    UPDATE onboardings
       SET pii_key_id = CASE WHEN pii_ciphertext IS NULL THEN NULL ELSE p_pii_key_id END,
           pii_ciphertext = CASE WHEN pii_ciphertext IS NULL THEN NULL ELSE p_pii_ciphertext END,
           selfie_key_id = NULL, selfie_ciphertext = NULL, updated_at = now(),
           device = erase_coordinates(device)
     WHERE id = p_onboarding;
    WITH changed AS (
        UPDATE decisions SET evidence = erase_coordinates(evidence)
         WHERE onboarding_id = p_onboarding AND evidence <> erase_coordinates(evidence)
        RETURNING 1)
    SELECT count(*) INTO n_decisions FROM changed;
    IF had_coordinates OR n_decisions > 0 THEN
        erased := erased || jsonb_build_object('category', 'coordinates', 'erased_from',
            (SELECT jsonb_agg(w) FROM unnest(ARRAY[
                CASE WHEN had_coordinates THEN 'onboardings.device' END,
                CASE WHEN n_decisions > 0 THEN 'decisions.evidence' END]) AS w WHERE w IS NOT NULL));
    END IF;
    WITH changed AS (
        UPDATE review_cases SET statement_key_id = NULL, statement_ciphertext = NULL
         WHERE onboarding_id = p_onboarding AND statement_ciphertext IS NOT NULL
        RETURNING 1)
    SELECT count(*) INTO n_statements FROM changed;
    WITH changed AS (
        UPDATE callbacks SET body = jsonb_set(body, '{data,statement}', 'null'::jsonb)
         WHERE onboarding_id = p_onboarding AND type IN ('review.opened', 'review.resolved')
           AND jsonb_typeof(body #> '{data,statement}') = 'string'
        RETURNING 1)
    SELECT count(*) INTO n_outbox FROM changed;
    IF n_statements + n_outbox > 0 THEN
        erased := erased || jsonb_build_object('category', 'review_statements', 'erased_from',
            (SELECT jsonb_agg(w) FROM unnest(ARRAY[
                CASE WHEN n_statements > 0 THEN 'review_cases.statement_ciphertext' END,
                CASE WHEN n_outbox > 0 THEN 'callbacks.body' END]) AS w WHERE w IS NOT NULL));
    END IF;
    -- What providers wrote back may quote the person; what was sent is kept only redacted, but
    -- its optional values (a gender, say) were kept as sent. Both go; the call's provider,
    -- operation, status, time and the fields veredito parsed stay.
    WITH changed AS (
        UPDATE provider_calls SET answer_key_id = NULL, answer_ciphertext = NULL
         WHERE onboarding_id = p_onboarding AND answer_ciphertext IS NOT NULL
        RETURNING 1)
    SELECT count(*) INTO n_answers FROM changed;
    WITH changed AS (
        UPDATE provider_calls SET request = NULL
         WHERE onboarding_id = p_onboarding AND request IS NOT NULL
        RETURNING 1)
    SELECT count(*) INTO n_requests FROM changed;
    IF n_answers > 0 THEN
        erased := erased || jsonb_build_object('category', 'provider_answers',
                                               'erased_from', jsonb_build_array('provider_calls.answer_ciphertext'));
    END IF;
    IF n_requests > 0 THEN
        erased := erased || jsonb_build_object('category', 'provider_requests',
                                               'erased_from', jsonb_build_array('provider_calls.request'));
    END IF;
    INSERT INTO onboarding_events (onboarding_id, kind, detail)
    VALUES (p_onboarding, 'subject_erasure', jsonb_build_object('subject_request_id', p_request));
    RETURN QUERY
        INSERT INTO subject_erasures (request_id, onboarding_id, erased)
        VALUES (p_request, p_onboarding, erased)
        RETURNING *;
END;
$$;

-- A provider call recorded after its onboarding was erased (the call log is written beside the
-- flow, and a deciding transaction stores its calls when it commits) arrives without what the
-- erasure removes.
CREATE FUNCTION provider_call_after_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.onboarding_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM subject_erasures WHERE onboarding_id = NEW.onboarding_id) THEN
        NEW.answer_key_id := NULL;
        NEW.answer_ciphertext := NULL;
        NEW.request := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER provider_calls_after_erasure BEFORE INSERT ON provider_calls
    FOR EACH ROW EXECUTE FUNCTION provider_call_after_erasure();

REVOKE ALL ON FUNCTION erase_subject_personal_data(uuid, uuid, text, bytea, text[]) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
        EXECUTE 'GRANT SELECT, INSERT ON subject_requests, subject_request_answers,
                 subject_request_onboardings TO veredito_app';
        -- An erasure's record is written only by the function that erases.
        EXECUTE 'GRANT SELECT ON subject_erasures TO veredito_app';
        EXECUTE 'GRANT EXECUTE ON FUNCTION
                 erase_subject_personal_data(uuid, uuid, text, bytea, text[]) TO veredito_app';
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;

-- Set by an erasure request on each onboarding it covers (under the row's lock): the statement
-- that moves the onboarding to decided returns it, so the deciding transaction knows to erase
-- without asking in a statement of its own.
ALTER TABLE onboardings ADD COLUMN erasure_requested boolean NOT NULL DEFAULT false;
