-- The core decision path: onboardings, their unico processes, the decisions made on them,
-- every provider call, every webhook received and a timeline of what happened.

CREATE TABLE onboardings (
    id                  uuid PRIMARY KEY,
    -- The API key's name and its Idempotency-Key identify a request; request_hash is the
    -- SHA-256 of the canonical JSON body, so a different body under the same key is a conflict.
    client_name         text NOT NULL,
    idempotency_key     text NOT NULL,
    request_hash        bytea NOT NULL,
    reference           text,
    -- Personal data (CPF, name, contact) only as AES-256-GCM ciphertext under pii_key_id;
    -- cpf_hash is an HMAC-SHA256 of the CPF digits for exact search. Erased by retention.
    cpf_hash            bytea NOT NULL,
    pii_key_id          text,
    pii_ciphertext      bytea,
    pii_erased_at       timestamptz,
    account_id          text NOT NULL,
    person_id           text NOT NULL,
    device              jsonb NOT NULL,
    open_finance        jsonb,
    -- received: stored, unico not yet asked; biometrics: a unico process is open;
    -- device: biometrics approved, device registration under way; decided.
    state               text NOT NULL DEFAULT 'received'
                        CHECK (state IN ('received', 'biometrics', 'device', 'decided')),
    -- While set and in the future, one request is creating the unico process: nobody else may.
    create_claimed_until timestamptz,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    UNIQUE (client_name, idempotency_key)
);

-- Onboardings left in 'received' (the process was never created) are swept to a decision.
CREATE INDEX onboardings_received_idx ON onboardings (created_at) WHERE state = 'received';

CREATE TABLE unico_processes (
    process_id      text PRIMARY KEY,
    onboarding_id   uuid NOT NULL UNIQUE REFERENCES onboardings (id),
    status          integer NOT NULL,
    -- The latest result as received (BiometricResult).
    result          jsonb NOT NULL,
    final           boolean NOT NULL DEFAULT false,
    -- The poller claims due rows by pushing next_poll_at forward, so a crashed poller's claim
    -- simply expires and another replica takes over.
    next_poll_at    timestamptz NOT NULL,
    poll_count      integer NOT NULL DEFAULT 0,
    last_polled_at  timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE INDEX unico_processes_due_idx ON unico_processes (next_poll_at) WHERE NOT final;

CREATE TABLE decisions (
    id              uuid PRIMARY KEY,
    onboarding_id   uuid NOT NULL UNIQUE REFERENCES onboardings (id),
    outcome         text NOT NULL CHECK (outcome IN ('approved', 'review', 'retry', 'rejected')),
    reasons         jsonb NOT NULL,
    reason_codes    text[] NOT NULL,
    policy_version  text NOT NULL,
    thresholds      jsonb NOT NULL,
    -- The evidence the policy read (Evidence) and every rule it evaluated.
    evidence        jsonb NOT NULL,
    evaluations     jsonb NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now()
);

-- Decisions are a record: once written they never change.
CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER decisions_append_only
    BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER decisions_no_truncate
    BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

CREATE TABLE provider_calls (
    id                      bigserial PRIMARY KEY,
    onboarding_id           uuid,
    device_validation_id    uuid,
    provider                text NOT NULL,
    operation               text NOT NULL,
    method                  text NOT NULL,
    path                    text NOT NULL,
    http_status             integer,
    latency_ms              integer NOT NULL,
    -- Bodies are redacted by the client before they get here: no selfie, token, key or PII.
    request                 jsonb,
    response                jsonb,
    error                   text,
    created_at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX provider_calls_onboarding_idx ON provider_calls (onboarding_id, id) WHERE onboarding_id IS NOT NULL;

CREATE TABLE unico_webhooks (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    authenticated   boolean NOT NULL,
    process_id      text,
    state           text,
    payload         jsonb,
    -- Whether the process was known when the notification arrived (early deliveries are not).
    known_process   boolean NOT NULL DEFAULT false
);

CREATE INDEX unico_webhooks_process_idx ON unico_webhooks (process_id) WHERE authenticated;

-- What happened to an onboarding, in order, for the audit timeline.
CREATE TABLE onboarding_events (
    id              bigserial PRIMARY KEY,
    onboarding_id   uuid NOT NULL REFERENCES onboardings (id),
    kind            text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    at              timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX onboarding_events_onboarding_idx ON onboarding_events (onboarding_id, id);
