-- The device half: QI Tech device registration (a durable job per approved onboarding), device
-- validations of returning users, and the Open Finance risk signal sent to Zro.

-- One row per onboarding whose other checks approved. The worker claims due rows by pushing
-- next_run_at forward (a lease), so a crashed worker's claim expires and another takes over.
CREATE TABLE device_registrations (
    onboarding_id   uuid PRIMARY KEY REFERENCES onboardings (id),
    -- How far the account -> person -> device sequence got. Each step is stored as soon as QI
    -- Tech confirms it, so a retry resumes there instead of starting over.
    --   account, person, device: the next POST to send; read_back: the device was registered
    --   (or already existed) and its analysis is read with GET; done: the onboarding was decided.
    step            text NOT NULL DEFAULT 'account'
                    CHECK (step IN ('account', 'person', 'device', 'read_back', 'done')),
    -- The biometric evidence that approved, kept so the final decision is made on it.
    biometrics      jsonb NOT NULL,
    -- QI Tech's latest answer about the device (DeviceRegistration).
    registration    jsonb,
    -- Fixed when the job is created, so every attempt sends the same registration_date.
    registration_date timestamptz NOT NULL DEFAULT now(),
    deadline_at     timestamptz NOT NULL,
    next_run_at     timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE INDEX device_registrations_due_idx ON device_registrations (next_run_at) WHERE step <> 'done';

CREATE TABLE device_validations (
    id                  uuid PRIMARY KEY,
    client_name         text NOT NULL,
    idempotency_key     text NOT NULL,
    request_hash        bytea NOT NULL,
    reference           text,
    account_id          text NOT NULL,
    person_id           text NOT NULL,
    session_id          text NOT NULL,
    face_recognition_key text,
    -- The event id sent to QI Tech: drawn once, so a resend after a lost answer is recognised
    -- by QI Tech as the same event (409) instead of a second analysis.
    event_id            uuid NOT NULL UNIQUE,
    event_date          timestamptz NOT NULL DEFAULT now(),
    -- Whether QI Tech has acknowledged the event; until then the worker keeps sending it.
    sent                boolean NOT NULL DEFAULT false,
    analysis_status     text,
    reason              text,
    outcome             text CHECK (outcome IN ('approved', 'rejected')),
    state               text NOT NULL DEFAULT 'processing' CHECK (state IN ('processing', 'decided')),
    next_poll_at        timestamptz NOT NULL DEFAULT now(),
    attempts            integer NOT NULL DEFAULT 0,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    UNIQUE (client_name, idempotency_key)
);

CREATE INDEX device_validations_due_idx ON device_validations (next_poll_at) WHERE state = 'processing';

-- The risk signal sent to Zro for an approved onboarding with an Open Finance enrollment.
-- It never changes the verdict; it is reported beside it.
CREATE TABLE open_finance_signals (
    onboarding_id       uuid PRIMARY KEY REFERENCES onboardings (id),
    enrollment_id       text NOT NULL,
    -- x-transaction-uuid: one per onboarding, the same on every attempt.
    transaction_uuid    uuid NOT NULL,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_run_at         timestamptz NOT NULL DEFAULT now(),
    http_status         integer,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);

CREATE INDEX open_finance_signals_due_idx ON open_finance_signals (next_run_at) WHERE status = 'pending';
