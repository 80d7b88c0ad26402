-- The risk-memory figures (issue 24) as a function, so that the statement storing an onboarding
-- can compute them itself, after it has taken its advisory locks, instead of a second statement
-- that wrote the row again. The function is VOLATILE, so in READ COMMITTED each of its queries
-- takes a fresh snapshot: called after the locks (the INSERT reads them from its first CTE),
-- it sees every onboarding stored before this one under the same values, and none after.
--
-- Two ways to name the onboarding's values:
-- * p_keys and p_hashes given: the onboarding being stored (its link rows are written by the
--   same statement, so not visible yet); it counts itself once, after everything visible.
-- * p_keys null: an onboarding already stored (replay, shadow): its own link rows, and what was
--   stored before it by `seq`.
-- Then: the time to judge as of (null: now); the lists asked about; the velocity rules' keys,
-- distinct keys and windows (seconds); the linked-fraud rules' keys (comma separated) and
-- windows; the shared-indication windows; the reason codes that mark a rejection as fraud; how
-- many linked onboardings or indications a rule names at most. Answers the figures as one JSON
-- document (store/links.rs reads it). Its plan is kept per connection (generic: every lookup is
-- a range scan by key and hash whatever the values).
CREATE FUNCTION risk_memory_figures(
    p_onboarding uuid, p_keys text[], p_hashes bytea[], p_as_of timestamptz, p_lists text[],
    p_velocity_keys text[], p_velocity_distinct text[], p_velocity_windows bigint[],
    p_linked_keys text[], p_linked_windows bigint[], p_shared_windows bigint[],
    p_fraud_reasons text[], p_at_most bigint
) RETURNS jsonb
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Most people share nothing with anyone stored before them: when no stored onboarding has
    -- any of these values, no list names one and no institution shared an indication about the
    -- CPF, the figures are known without the lookups (each velocity rule counts this onboarding
    -- alone, nothing is linked, nothing listed), at the cost of three index probes.
    IF p_keys IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM unnest(p_keys, p_hashes) AS m(key, hash)
                         JOIN onboarding_links o ON o.key = m.key AND o.hash = m.hash)
       AND NOT EXISTS (SELECT 1 FROM unnest(p_lists) AS q(name)
                         JOIN lists l ON l.name = q.name
                         JOIN unnest(p_keys, p_hashes) AS m(key, hash) ON m.key = l.key
                         JOIN list_entries e ON e.list_name = l.name AND e.hash = m.hash)
       AND NOT EXISTS (SELECT 1 FROM unnest(p_keys, p_hashes) AS m(key, hash)
                         JOIN received_fraud_indications r ON r.cpf_hash = m.hash
                        WHERE m.key = 'cpf' AND cardinality(p_shared_windows) > 0)
    THEN
        RETURN jsonb_build_object(
            'as_of', COALESCE(p_as_of, clock_timestamp()),
            'lists', COALESCE((
                SELECT jsonb_agg(jsonb_build_object('list', q.name, 'key', l.key, 'hit', NULL)
                                 ORDER BY q.i)
                  FROM unnest(p_lists) WITH ORDINALITY AS q(name, i)
                  LEFT JOIN lists l ON l.name = q.name), '[]'::jsonb),
            'velocity', COALESCE((
                SELECT jsonb_agg(jsonb_build_object(
                           'key', q.key, 'distinct', q.distinct_key, 'window_secs', q.window_secs,
                           'count', CASE WHEN q.key = ANY (p_keys)
                                         THEN CASE WHEN q.distinct_key IS NULL
                                                     OR q.distinct_key = ANY (p_keys)
                                                   THEN 1 ELSE 0 END END)
                                 ORDER BY q.i)
                  FROM unnest(p_velocity_keys, p_velocity_distinct, p_velocity_windows)
                       WITH ORDINALITY AS q(key, distinct_key, window_secs, i)), '[]'::jsonb),
            'linked', COALESCE((
                SELECT jsonb_agg(jsonb_build_object(
                           'keys', to_jsonb(string_to_array(q.keys, ',')),
                           'window_secs', q.window_secs, 'onboardings', '[]'::jsonb)
                                 ORDER BY q.i)
                  FROM unnest(p_linked_keys, p_linked_windows) WITH ORDINALITY
                       AS q(keys, window_secs, i)), '[]'::jsonb),
            'shared', COALESCE((
                SELECT jsonb_agg(jsonb_build_object('window_secs', q.window_secs,
                                                    'indications', '[]'::jsonb) ORDER BY q.i)
                  FROM unnest(p_shared_windows) WITH ORDINALITY AS q(window_secs, i)), '[]'::jsonb));
    END IF;
    RETURN (WITH me AS (
                 SELECT key, hash, seq, created_at FROM onboarding_links
                  WHERE onboarding_id = p_onboarding AND p_keys IS NULL
                 UNION ALL
                 SELECT k.key, k.hash, NULL::bigint, now() FROM unnest(p_keys, p_hashes) AS k(key, hash)
                  WHERE p_keys IS NOT NULL
             ), clock AS (
                 SELECT COALESCE(p_as_of, clock_timestamp()) AS as_of
             ), list_figures AS (
                 SELECT COALESCE(jsonb_agg(jsonb_build_object(
                            'list', q.name, 'key', l.key,
                            'hit', CASE WHEN e.action = 'added'
                                         AND (e.expires_at IS NULL OR e.expires_at > clock.as_of)
                                        THEN jsonb_build_object('entry_id', e.id, 'value', e.masked,
                                             'reason', e.reason, 'added_by', e.by, 'added_at', e.at,
                                             'expires_at', e.expires_at) END)
                        ORDER BY q.i), '[]'::jsonb) AS figures
                   FROM unnest(p_lists) WITH ORDINALITY AS q(name, i)
                  CROSS JOIN clock
                   LEFT JOIN lists l ON l.name = q.name
                   LEFT JOIN me ON me.key = l.key
                   LEFT JOIN LATERAL (
                        SELECT e.id, e.action, e.expires_at, e.masked, e.reason, e.by, e.at
                          FROM list_entries e
                         WHERE e.list_name = l.name AND e.hash = me.hash AND e.at <= clock.as_of
                         ORDER BY e.id DESC LIMIT 1) e ON true
             ), velocity_figures AS (
                 SELECT COALESCE(jsonb_agg(jsonb_build_object(
                            'key', q.key, 'distinct', q.distinct_key, 'window_secs', q.window_secs,
                            'count', (SELECT CASE WHEN q.distinct_key IS NULL THEN count(*)
                                                  ELSE count(DISTINCT s.distinct_hash) END
                                        FROM me
                                        CROSS JOIN LATERAL (
                                             SELECT d.hash AS distinct_hash
                                               FROM onboarding_links o
                                               LEFT JOIN onboarding_links d
                                                 ON d.onboarding_id = o.onboarding_id AND d.key = q.distinct_key
                                              WHERE o.key = me.key AND o.hash = me.hash
                                                AND (me.seq IS NULL OR o.seq < me.seq)
                                                AND o.created_at >= me.created_at - make_interval(secs => q.window_secs)
                                                AND o.onboarding_id <> p_onboarding
                                             UNION ALL
                                             SELECT (SELECT m.hash FROM me m WHERE m.key = q.distinct_key)) s
                                       WHERE me.key = q.key
                                      HAVING count(*) > 0))
                        ORDER BY q.i), '[]'::jsonb) AS figures
                   FROM unnest(p_velocity_keys, p_velocity_distinct, p_velocity_windows) WITH ORDINALITY
                        AS q(key, distinct_key, window_secs, i)
             ), linked_figures AS (
                 SELECT COALESCE(jsonb_agg(jsonb_build_object(
                            'keys', to_jsonb(string_to_array(q.keys, ',')),
                            'window_secs', q.window_secs,
                            'onboardings', (
                                SELECT COALESCE(jsonb_agg(s.linked ORDER BY s.seq), '[]'::jsonb) FROM (
                                    SELECT DISTINCT ON (o.onboarding_id) o.seq,
                                           jsonb_build_object('onboarding_id', o.onboarding_id,
                                               'key', o.key, 'decision_id', d.id,
                                               'reasons', to_jsonb(d.reason_codes)) AS linked
                                      FROM me
                                      JOIN onboarding_links o
                                        ON o.key = me.key AND o.hash = me.hash
                                       AND (me.seq IS NULL OR o.seq < me.seq)
                                       AND o.created_at >= me.created_at - make_interval(secs => q.window_secs)
                                      CROSS JOIN clock
                                      CROSS JOIN LATERAL (
                                           SELECT d.id, d.outcome, d.reason_codes, d.evaluations
                                             FROM decisions d
                                            WHERE d.onboarding_id = o.onboarding_id
                                              AND d.decided_at <= clock.as_of
                                            ORDER BY d.decided_at DESC LIMIT 1) d
                                     WHERE me.key = ANY (string_to_array(q.keys, ','))
                                       AND o.onboarding_id <> p_onboarding
                                       AND d.outcome = 'rejected'
                                       AND (d.reason_codes && p_fraud_reasons
                                            OR EXISTS (SELECT 1 FROM fraud_indications fi
                                                        WHERE fi.evidence->>'decision_id' = d.id::text
                                                          AND fi.created_by <> 'policy'
                                                          AND fi.created_at <= clock.as_of)
                                            OR EXISTS (SELECT 1 FROM jsonb_array_elements(d.evaluations) ev
                                                        WHERE ev->>'code' LIKE 'list.%'
                                                          AND ev->>'outcome' = 'rejected'
                                                          AND (ev->>'fired')::boolean))
                                     ORDER BY o.onboarding_id, o.seq
                                     LIMIT p_at_most) s))
                        ORDER BY q.i), '[]'::jsonb) AS figures
                   FROM unnest(p_linked_keys, p_linked_windows) WITH ORDINALITY AS q(keys, window_secs, i)
             ), shared_figures AS (
                 SELECT COALESCE(jsonb_agg(jsonb_build_object(
                            'window_secs', q.window_secs,
                            'indications', (
                                SELECT COALESCE(jsonb_agg(jsonb_build_object(
                                           'source', r.source, 'external_id', r.external_id,
                                           'typology', r.typology, 'identified_at', r.identified_at)
                                       ORDER BY r.identified_at DESC), '[]'::jsonb)
                                  FROM (SELECT r.* FROM me
                                          JOIN received_fraud_indications r ON r.cpf_hash = me.hash
                                         CROSS JOIN clock
                                         WHERE me.key = 'cpf'
                                           AND r.received_at <= clock.as_of
                                           AND (r.withdrawn_at IS NULL OR r.withdrawn_at > clock.as_of)
                                           AND r.identified_at >= clock.as_of - make_interval(secs => q.window_secs)
                                         ORDER BY r.identified_at DESC
                                         LIMIT p_at_most) r))
                        ORDER BY q.i), '[]'::jsonb) AS figures
                   FROM unnest(p_shared_windows) WITH ORDINALITY AS q(window_secs, i)
             )
             SELECT jsonb_build_object('as_of', clock.as_of, 'lists', lf.figures,
                                       'velocity', vf.figures, 'linked', lf2.figures,
                                       'shared', sf.figures) AS figures
               FROM clock, list_figures lf, velocity_figures vf, linked_figures lf2,
                    shared_figures sf
    );
END;
$$;

-- A link row is written only by the statement that stores its onboarding, and onboardings are
-- never deleted (retention erases their personal data, and their links with it): the foreign
-- key cost four lookups of the onboarding on every onboarding stored, and guarded nothing.
ALTER TABLE onboarding_links DROP CONSTRAINT onboarding_links_onboarding_id_fkey;
