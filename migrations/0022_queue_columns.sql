-- The step queue (0004) took over the polling of unico processes and the device registration
-- job: a read_process or register_device step holds when each runs. The columns those jobs
-- were claimed by, and the indexes that served their claims, have been written and indexed
-- since then but never read; they go.
DROP INDEX IF EXISTS unico_processes_due_idx;
ALTER TABLE unico_processes DROP COLUMN next_poll_at;

DROP INDEX IF EXISTS device_registrations_due_idx;
ALTER TABLE device_registrations DROP COLUMN next_run_at;
