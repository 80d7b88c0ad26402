-- What a provider wrote in its own words (an error title that names the person, an answer that
-- echoes the request) is no longer kept in clear: `response` keeps only the fields veredito
-- parses and `error` only a code, and the answer as the provider worded it is sealed with the
-- personal data's key (AES-256-GCM, bound to the call's subject), shown only to keys with
-- pii:read and erased by retention with the rest.
ALTER TABLE provider_calls
    ADD COLUMN answer_key_id text,
    ADD COLUMN answer_ciphertext bytea;
ALTER TABLE provider_calls ALTER COLUMN answer_ciphertext SET STORAGE EXTERNAL;

-- Calls stored before this migration kept the provider's text in clear, in `response` and
-- `error`; it cannot be sealed from SQL, so it is erased. Their provider, operation, status,
-- time and redacted request stay.
UPDATE provider_calls SET response = NULL, error = NULL
 WHERE response IS NOT NULL OR error IS NOT NULL;
