-- Columns no statement has read since the step queue (0004) took over the jobs they served,
-- and the indexes kept up for them on every write (0022 dropped the others):
-- * device_validations.next_poll_at: the read_validation step says when to poll QI Tech;
-- * open_finance_signals.next_run_at: the open_finance_signal step says when to send;
-- * unico_processes.poll_count: never written; the read step counts its attempts.
DROP INDEX IF EXISTS device_validations_due_idx;
ALTER TABLE device_validations DROP COLUMN next_poll_at;

DROP INDEX IF EXISTS open_finance_signals_due_idx;
ALTER TABLE open_finance_signals DROP COLUMN next_run_at;

ALTER TABLE unico_processes DROP COLUMN poll_count;
