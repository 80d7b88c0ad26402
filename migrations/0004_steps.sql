-- One durable step queue for every piece of work that follows a state change: creating and
-- reading back the unico process, registering the device with QI Tech and reading a pending
-- analysis back, the Open Finance risk signal, and device validations. A state change and the
-- steps it causes are written in one transaction; the rows of the aggregates (unico_processes,
-- device_registrations, open_finance_signals, device_validations) keep their data, the step
-- keeps when it runs, how often it ran and why it last failed.

CREATE TABLE steps (
    id                      bigserial PRIMARY KEY,
    kind                    text NOT NULL CHECK (kind IN (
                                'create_process', 'read_process', 'register_device', 'read_device',
                                'open_finance_signal', 'send_validation', 'read_validation')),
    onboarding_id           uuid REFERENCES onboardings (id),
    device_validation_id    uuid REFERENCES device_validations (id),
    status                  text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    -- When the step is due. A webhook that makes it due early moves run_at to now.
    run_at                  timestamptz NOT NULL DEFAULT now(),
    -- A runner holds a step until claimed_until (a lease): one that dies loses its claim when
    -- the lease runs out and another replica takes the step. A run_at later than claimed_at
    -- means the step was made due again while it ran, so it runs again at once.
    claimed_at              timestamptz,
    claimed_until           timestamptz,
    attempts                integer NOT NULL DEFAULT 0,
    -- The provider's error code or class, never its text (it can echo personal data).
    last_error              text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz,
    CHECK ((onboarding_id IS NULL) <> (device_validation_id IS NULL))
);

CREATE INDEX steps_due_idx ON steps (run_at) WHERE status = 'pending';
-- At most one pending step of a kind per onboarding or validation: a duplicate webhook or a
-- racing replica cannot queue the same work twice.
CREATE UNIQUE INDEX steps_onboarding_pending_idx ON steps (onboarding_id, kind)
    WHERE status = 'pending' AND onboarding_id IS NOT NULL;
CREATE UNIQUE INDEX steps_validation_pending_idx ON steps (device_validation_id, kind)
    WHERE status = 'pending' AND device_validation_id IS NOT NULL;

-- Work that the queues of earlier versions held becomes steps, so an upgrade loses nothing.
INSERT INTO steps (kind, onboarding_id, run_at)
SELECT 'create_process', id, now() FROM onboardings WHERE state = 'received';

INSERT INTO steps (kind, onboarding_id, run_at, attempts)
SELECT 'read_process', onboarding_id, next_poll_at, poll_count FROM unico_processes
 WHERE NOT final
   AND onboarding_id IN (SELECT id FROM onboardings WHERE state = 'biometrics');

INSERT INTO steps (kind, onboarding_id, run_at, attempts)
SELECT CASE WHEN step = 'read_back' THEN 'read_device' ELSE 'register_device' END,
       onboarding_id, next_run_at, attempts
  FROM device_registrations WHERE step <> 'done';

INSERT INTO steps (kind, onboarding_id, run_at, attempts)
SELECT 'open_finance_signal', onboarding_id, next_run_at, attempts
  FROM open_finance_signals WHERE status = 'pending';

INSERT INTO steps (kind, device_validation_id, run_at, attempts)
SELECT CASE WHEN sent THEN 'read_validation' ELSE 'send_validation' END, id, next_poll_at, attempts
  FROM device_validations WHERE state = 'processing';

DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE ON steps TO veredito_app';
    EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE steps_id_seq TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on steps to veredito_app; grant its privileges by hand';
END;
$$;

-- The selfie waits, sealed like the rest of the personal data, until unico has the process: a
-- CreateProcess retried after a failure or a restart needs it. It is erased in the transaction
-- that stores the process, or the decision when no process is ever created.
ALTER TABLE onboardings ADD COLUMN selfie_key_id text, ADD COLUMN selfie_ciphertext bytea;
