-- Notes on review cases: a running thread of what reviewers found while working a case, and, for
-- a case the person opened (LGPD Art. 20), the answer to the person, kept apart from the internal
-- notes and sent with the `review.resolved` callback. The text is sealed like the person's
-- statement (AES-GCM under pii.keys, the note's id as associated data). Notes are a record:
-- appended, never changed, but for the erasure of their text with the onboarding's personal data.
CREATE TABLE review_notes (
    id          uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES review_cases (id),
    kind        text NOT NULL CHECK (kind IN ('internal', 'answer')),
    author      text NOT NULL,
    key_id      text,
    ciphertext  bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((key_id IS NULL) = (ciphertext IS NULL))
);
CREATE INDEX review_notes_case_idx ON review_notes (case_id, created_at, id);
-- One answer to the person per case.
CREATE UNIQUE INDEX review_notes_one_answer_idx ON review_notes (case_id) WHERE kind = 'answer';

CREATE FUNCTION review_note_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.key_id IS NULL AND NEW.ciphertext IS NULL
       AND to_jsonb(NEW) - 'key_id' - 'ciphertext' = to_jsonb(OLD) - 'key_id' - 'ciphertext' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % is not allowed: rows are append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER review_notes_append_only BEFORE UPDATE OR DELETE ON review_notes
    FOR EACH ROW EXECUTE FUNCTION review_note_is_fixed();
CREATE TRIGGER review_notes_no_truncate BEFORE TRUNCATE ON review_notes
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- The notes' text goes with the onboarding's personal data: retention and the person's erasure
-- (LGPD Art. 18 VI) are the only writers of `onboardings.pii_ciphertext` (one empties it, the
-- other seals what must stay), so the notes follow that change here rather than in a copy of
-- each function.
CREATE FUNCTION erase_review_notes() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
BEGIN
    UPDATE review_notes n SET key_id = NULL, ciphertext = NULL
      FROM review_cases c
     WHERE c.onboarding_id = NEW.id AND n.case_id = c.id AND n.ciphertext IS NOT NULL;
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION erase_review_notes() FROM PUBLIC;
CREATE TRIGGER onboardings_erase_review_notes AFTER UPDATE OF pii_ciphertext ON onboardings
    FOR EACH ROW WHEN (OLD.pii_ciphertext IS DISTINCT FROM NEW.pii_ciphertext)
    EXECUTE FUNCTION erase_review_notes();

-- A message for the console session's next page (post/redirect/get): written by the action,
-- read and removed by the page after it, so a reload shows it no more. It names no person.
CREATE TABLE console_flashes (
    session_id_sha256  bytea PRIMARY KEY REFERENCES console_sessions (id_sha256) ON DELETE CASCADE,
    kind               text NOT NULL CHECK (kind IN ('notice', 'error')),
    text               text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    EXECUTE 'GRANT SELECT, INSERT ON review_notes TO veredito_app';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON console_flashes TO veredito_app';
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cannot grant on review_notes and console_flashes to veredito_app; grant by hand';
END;
$$;
