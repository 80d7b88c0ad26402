-- Fraud indications (issue 25; Resolução Conjunta nº 6/2023): made here, shared with the
-- institutions' sharing system within 24 hours, declared monthly; and those other institutions
-- shared, received back and judged before unico.

-- ---- Indications made here --------------------------------------------------------------------
--
-- The CPF is sealed (AES-256-GCM under pii.keys, bound to the indication's id) beside its keyed
-- hash (the same HMAC as onboardings.cpf_hash) and its mask. What may change: the typology and
-- the description (an alteration), the status, and registered_at once, when the sharing system
-- first acknowledged it. Every change is also a row of fraud_indication_history, which never
-- changes.
CREATE TABLE fraud_indications (
    id              uuid PRIMARY KEY,
    onboarding_id   uuid REFERENCES onboardings (id),
    cpf_hash        bytea NOT NULL,
    cpf_masked      text NOT NULL,
    cpf_key_id      text NOT NULL,
    cpf_ciphertext  bytea NOT NULL,
    typology        text NOT NULL CHECK (typology IN ('identity_theft', 'synthetic_identity',
                        'mule_account', 'document_fraud', 'account_takeover', 'other')),
    description     text NOT NULL,
    -- {"decision_id", "reasons"}: the decision that identified it, when one did.
    evidence        jsonb NOT NULL,
    activity        text NOT NULL DEFAULT 'account_opening',
    -- institution.cnpj when it was made (null while none is configured).
    institution     text,
    identified_at   timestamptz NOT NULL,
    registered_at   timestamptz,
    status          text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'registered', 'withdrawn')),
    confidential    boolean NOT NULL,
    -- 'policy' or the name of the API key (the reviewer) that made it.
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX fraud_indications_identified_idx ON fraud_indications (identified_at DESC, id DESC);
CREATE INDEX fraud_indications_cpf_idx ON fraud_indications (cpf_hash);
-- The 24-hour rule: what is still to be registered, oldest first.
CREATE INDEX fraud_indications_unregistered_idx ON fraud_indications (identified_at)
    WHERE registered_at IS NULL AND status = 'pending' AND NOT confidential;
-- The policy makes one indication per decision: a step that runs twice cannot make a second.
CREATE UNIQUE INDEX fraud_indications_policy_decision_idx
    ON fraud_indications ((evidence->>'decision_id')) WHERE created_by = 'policy';
-- The decision an indication rests on (linked fraud asks whether a reviewer recorded fraud).
CREATE INDEX fraud_indications_decision_idx ON fraud_indications ((evidence->>'decision_id'));

-- What identifies an indication never changes; registered_at is set once; a withdrawal is
-- final. For every role, the owner included.
CREATE FUNCTION fraud_indication_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.onboarding_id IS DISTINCT FROM OLD.onboarding_id
       OR NEW.cpf_hash IS DISTINCT FROM OLD.cpf_hash OR NEW.cpf_masked IS DISTINCT FROM OLD.cpf_masked
       OR NEW.cpf_key_id IS DISTINCT FROM OLD.cpf_key_id
       OR NEW.cpf_ciphertext IS DISTINCT FROM OLD.cpf_ciphertext
       OR NEW.evidence IS DISTINCT FROM OLD.evidence OR NEW.activity IS DISTINCT FROM OLD.activity
       OR NEW.institution IS DISTINCT FROM OLD.institution
       OR NEW.identified_at IS DISTINCT FROM OLD.identified_at
       OR NEW.confidential IS DISTINCT FROM OLD.confidential
       OR NEW.created_by IS DISTINCT FROM OLD.created_by
       OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR (OLD.registered_at IS NOT NULL AND NEW.registered_at IS DISTINCT FROM OLD.registered_at)
       OR (OLD.status = 'withdrawn' AND NEW.status <> 'withdrawn')
       OR (NEW.confidential AND NEW.registered_at IS NOT NULL) THEN
        RAISE EXCEPTION 'fraud indication %: this change is not allowed', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER fraud_indications_fixed BEFORE UPDATE ON fraud_indications
    FOR EACH ROW EXECUTE FUNCTION fraud_indication_is_fixed();
CREATE TRIGGER fraud_indications_no_delete BEFORE DELETE ON fraud_indications
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER fraud_indications_no_truncate BEFORE TRUNCATE ON fraud_indications
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Everything that happened to an indication, in order: made, registered (the sharing system's
-- first 2xx), altered, withdrawn. `detail` holds what an alteration changed (typology and
-- description before and after). The monthly report is computed from here.
CREATE TABLE fraud_indication_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    indication_id   uuid NOT NULL REFERENCES fraud_indications (id),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    by              text NOT NULL,
    what            text NOT NULL CHECK (what IN ('made', 'registered', 'altered', 'withdrawn')),
    reason          text,
    detail          jsonb
);
CREATE INDEX fraud_indication_history_of_idx ON fraud_indication_history (indication_id, id);
CREATE UNIQUE INDEX fraud_indication_history_once_idx ON fraud_indication_history (indication_id, what)
    WHERE what IN ('made', 'registered', 'withdrawn');
CREATE TRIGGER fraud_indication_history_append_only BEFORE UPDATE OR DELETE ON fraud_indication_history
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER fraud_indication_history_no_truncate BEFORE TRUNCATE ON fraud_indication_history
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- ---- Sharing through the outbox ---------------------------------------------------------------
--
-- The callback outbox gains a target: 'callbacks' (callbacks.url, as before) or
-- 'fraud_sharing' (fraud_sharing.url). The same step delivers both, signed and retried alike.
-- A sharing event names its indication; its stored body has the CPF as null, and the delivery
-- unseals it from the indication, so the outbox holds no CPF in the clear.
ALTER TABLE callbacks ADD COLUMN target text NOT NULL DEFAULT 'callbacks'
    CHECK (target IN ('callbacks', 'fraud_sharing'));
ALTER TABLE callbacks ADD COLUMN fraud_indication_id uuid REFERENCES fraud_indications (id);
ALTER TABLE callbacks DROP CONSTRAINT callbacks_type_check;
ALTER TABLE callbacks ADD CONSTRAINT callbacks_type_check CHECK (type IN (
    'onboarding.decided', 'device_validation.decided', 'review.opened', 'review.resolved',
    'fraud_indication.registered', 'fraud_indication.updated', 'fraud_indication.withdrawn'));
ALTER TABLE callbacks ADD CONSTRAINT callbacks_target_fits CHECK (
    (target = 'fraud_sharing') = (fraud_indication_id IS NOT NULL));
CREATE INDEX callbacks_target_idx ON callbacks (target, status, created_at DESC, id DESC);
-- A sharing event waits for the earlier events of its indication (they are delivered in order).
CREATE INDEX callbacks_indication_idx ON callbacks (fraud_indication_id, created_at)
    WHERE fraud_indication_id IS NOT NULL;

-- ---- Indications received from the sharing system ---------------------------------------------
--
-- Kept by (source, external_id) with the CPF as its keyed hash only. A later copy marked
-- withdrawn sets withdrawn_at once; nothing else changes, so a replay as of any moment sees what
-- was live then (received by then and not withdrawn by then).
CREATE TABLE received_fraud_indications (
    source          text NOT NULL,
    external_id     text NOT NULL,
    cpf_hash        bytea NOT NULL,
    typology        text NOT NULL CHECK (typology IN ('identity_theft', 'synthetic_identity',
                        'mule_account', 'document_fraud', 'account_takeover', 'other')),
    identified_at   timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    received_by     text NOT NULL,
    withdrawn_at    timestamptz,
    withdrawn_by    text,
    PRIMARY KEY (source, external_id)
);
CREATE INDEX received_fraud_indications_cpf_idx
    ON received_fraud_indications (cpf_hash, identified_at);

CREATE FUNCTION received_fraud_indication_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF to_jsonb(NEW) - 'withdrawn_at' - 'withdrawn_by'
           IS DISTINCT FROM to_jsonb(OLD) - 'withdrawn_at' - 'withdrawn_by'
       OR OLD.withdrawn_at IS NOT NULL THEN
        RAISE EXCEPTION 'received fraud indication %/%: only a withdrawal, once, is allowed',
            OLD.source, OLD.external_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER received_fraud_indications_fixed BEFORE UPDATE ON received_fraud_indications
    FOR EACH ROW EXECUTE FUNCTION received_fraud_indication_is_fixed();
CREATE TRIGGER received_fraud_indications_no_delete BEFORE DELETE ON received_fraud_indications
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veredito_app') THEN
        EXECUTE 'GRANT SELECT, INSERT ON fraud_indications, fraud_indication_history,
                 received_fraud_indications TO veredito_app';
        EXECUTE 'GRANT UPDATE (typology, description, status, registered_at)
                 ON fraud_indications TO veredito_app';
        EXECUTE 'GRANT UPDATE (withdrawn_at, withdrawn_by) ON received_fraud_indications
                 TO veredito_app';
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot grant to veredito_app; grant its privileges by hand (docs/audit.md)';
END;
$$;
