-- The W3C traceparent of the span that queued a step: the step's own span continues that trace,
-- so one onboarding is one trace across the request, the steps run later and the provider calls.
ALTER TABLE steps ADD COLUMN traceparent text
    CHECK (traceparent IS NULL OR length(traceparent) <= 128);

-- The metrics count onboardings not decided yet, by state, at every scrape.
CREATE INDEX onboardings_pending_idx ON onboardings (state) WHERE state <> 'decided';
