-- The figures of an onboarding being stored, for the statement that stores it. Almost every
-- onboarding shares no value with anything stored before it; its figures are then known in
-- advance (each velocity rule counts it alone, nothing is linked, no indication was shared), and
-- the service sends them as `p_alone`, without their time. Building that document here, from
-- the rules' arrays, was about half of what the figures cost such an onboarding (0.04 of
-- 0.09 ms a call, measured in a loop of 20,000). `p_alone` is null when a list rule is asked
-- (a list's key is read from `lists`): then, and whenever a value is shared, the answer is
-- `risk_memory_figures`'s.
CREATE FUNCTION new_onboarding_figures(
    p_onboarding uuid, p_keys text[], p_hashes bytea[], p_alone jsonb, p_lists text[],
    p_velocity_keys text[], p_velocity_distinct text[], p_velocity_windows bigint[],
    p_linked_keys text[], p_linked_windows bigint[], p_shared_windows bigint[],
    p_fraud_reasons text[], p_at_most bigint
) RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
-- Planned as index probes whatever the tables' size when the plan is made (see 0023).
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
BEGIN
    IF p_alone IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM unnest(p_keys, p_hashes) AS m(key, hash)
                         JOIN onboarding_links o ON o.key = m.key AND o.hash = m.hash)
       AND NOT (cardinality(p_shared_windows) > 0
                AND EXISTS (SELECT 1 FROM unnest(p_keys, p_hashes) AS m(key, hash)
                              JOIN received_fraud_indications r ON r.cpf_hash = m.hash
                             WHERE m.key = 'cpf'))
    THEN
        RETURN p_alone || jsonb_build_object('as_of', clock_timestamp());
    END IF;
    RETURN risk_memory_figures(p_onboarding, p_keys, p_hashes, NULL, p_lists, p_velocity_keys,
                               p_velocity_distinct, p_velocity_windows, p_linked_keys,
                               p_linked_windows, p_shared_windows, p_fraud_reasons, p_at_most);
END;
$$;
