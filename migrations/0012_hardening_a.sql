-- Hardening (issue 23, first part).

-- The person's statement (LGPD Art. 20) rests sealed in its review case only: review events in
-- the callback outbox are stored without it and get it back from the case at each delivery.
-- Events written before this carried it in the clear; they lose it here (one still pending gets
-- it back from its case when delivered).
UPDATE callbacks
   SET body = jsonb_set(body, '{data,statement}', 'null'::jsonb)
 WHERE type IN ('review.opened', 'review.resolved')
   AND jsonb_typeof(body #> '{data,statement}') = 'string';
