-- A step that fails on veredito's own side (not a provider's) backs off and, after
-- jobs.step_max_failures failures in a row, ends 'failed': it no longer runs until an operator
-- retries it (`veredito retry-steps`). `failures` counts those failures alone; `attempts` keeps
-- counting every run (a read-back's polls included).
ALTER TABLE steps ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE steps DROP CONSTRAINT steps_status_check;
ALTER TABLE steps ADD CONSTRAINT steps_status_check CHECK (status IN ('pending', 'done', 'failed'));
CREATE INDEX steps_failed_idx ON steps (id) WHERE status = 'failed';
