-- Human review and decision callbacks.
--
-- A reviewer's resolution appends a decision: an onboarding may now have several, the automatic
-- one first, and its verdict is the latest. Decisions stay append-only.
ALTER TABLE decisions DROP CONSTRAINT decisions_onboarding_id_key;
ALTER TABLE decisions
    ADD COLUMN decided_by text NOT NULL DEFAULT 'policy' CHECK (decided_by IN ('policy', 'reviewer')),
    ADD COLUMN reviewer text,
    ADD COLUMN note text;
CREATE INDEX decisions_onboarding_idx ON decisions (onboarding_id, decided_at DESC);

-- One case per request for a person to look. At most one not yet resolved per onboarding.
CREATE TABLE review_cases (
    id                  uuid PRIMARY KEY,
    onboarding_id       uuid NOT NULL REFERENCES onboardings (id),
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'resolved')),
    opened_by           text NOT NULL CHECK (opened_by IN ('policy', 'subject_request')),
    -- The person's own words (LGPD Art. 20 request), sealed like the rest of their data under
    -- the case id; erased by retention with it.
    statement_key_id    text,
    statement_ciphertext bytea,
    -- The automatic decision's reason codes, for the queue's filters.
    reasons             text[] NOT NULL,
    decision_id         uuid NOT NULL REFERENCES decisions (id),
    assignee            text,
    due_at              timestamptz NOT NULL,
    opened_at           timestamptz NOT NULL DEFAULT now(),
    claimed_at          timestamptz,
    resolved_at         timestamptz,
    resolution_outcome  text CHECK (resolution_outcome IN ('approved', 'rejected', 'retry')),
    resolution_note     text,
    resolution_reviewer text,
    -- The decision the resolution makes; drawn when resolving, written when the decision is
    -- (at once, or after QI Tech answered for an approval that needed the device registered).
    resolution_decision_id uuid
);

CREATE UNIQUE INDEX review_cases_one_unresolved_idx ON review_cases (onboarding_id)
    WHERE status <> 'resolved';
-- The queue: unresolved cases, soonest due first.
CREATE INDEX review_cases_queue_idx ON review_cases (due_at, id) WHERE status <> 'resolved';
CREATE INDEX review_cases_onboarding_idx ON review_cases (onboarding_id);

-- A registration run for a reviewer's approval ends in the reviewer's decision.
ALTER TABLE device_registrations ADD COLUMN review_case_id uuid REFERENCES review_cases (id);

-- Decision callbacks: an outbox. Each event is written in the transaction of the state change it
-- reports; a step delivers it.
CREATE TABLE callbacks (
    -- The webhook-id: the same on every attempt.
    id              uuid PRIMARY KEY,
    type            text NOT NULL CHECK (type IN ('onboarding.decided', 'device_validation.decided',
                                                  'review.opened', 'review.resolved')),
    -- The body, built when the event happened: `data` is what the matching GET answered then.
    body            jsonb NOT NULL,
    onboarding_id   uuid,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    failed_at       timestamptz
);

CREATE INDEX callbacks_status_idx ON callbacks (status, created_at DESC, id DESC);

ALTER TABLE steps ADD COLUMN callback_id uuid REFERENCES callbacks (id);
ALTER TABLE steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE steps ADD CONSTRAINT steps_kind_check CHECK (kind IN (
    'create_process', 'read_process', 'register_device', 'read_device',
    'open_finance_signal', 'send_validation', 'read_validation', 'deliver_callback'));
ALTER TABLE steps DROP CONSTRAINT steps_check;
ALTER TABLE steps ADD CONSTRAINT steps_one_subject CHECK (
    (onboarding_id IS NOT NULL)::int + (device_validation_id IS NOT NULL)::int
        + (callback_id IS NOT NULL)::int = 1);
CREATE UNIQUE INDEX steps_callback_pending_idx ON steps (callback_id, kind)
    WHERE status = 'pending' AND callback_id IS NOT NULL;

DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE ON review_cases, callbacks TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on review_cases and callbacks to veredito_app; grant by hand';
END;
$$;
