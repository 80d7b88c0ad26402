-- The figures' plans are generic and kept by each connection for as long as it lives, made when
-- the function is first called on it. A plan made while `onboarding_links` was small scanned the
-- table whole and hashed it, and went on doing so after the table grew: on a service started on
-- an empty database, the check that a person shares nothing read every link row stored since
-- (64 pages a call after 1,400 onboardings; the benchmark's sync throughput fell by a third).
-- Every lookup the function makes is a probe of an index by key and hash (or by onboarding):
-- with sequential scans and hash and merge joins priced out, the planner takes those probes
-- whatever the tables' size when the plan is made. A table with no index for a lookup is still
-- scanned (the setting raises the price, it does not forbid).
ALTER FUNCTION risk_memory_figures(uuid, text[], bytea[], timestamptz, text[], text[], text[],
                                   bigint[], text[], bigint[], bigint[], text[], bigint)
    SET enable_seqscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;
