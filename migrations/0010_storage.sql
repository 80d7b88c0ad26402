-- How the large values of the hot tables are stored. Neither change rewrites a table: each
-- applies to values written from now on.

-- Ciphertext does not compress, so PostgreSQL should not try: a selfie's sealed bytes (often
-- hundreds of KB) go out of line as they are, instead of through pglz first.
ALTER TABLE onboardings
    ALTER COLUMN selfie_ciphertext SET STORAGE EXTERNAL,
    ALTER COLUMN pii_ciphertext SET STORAGE EXTERNAL;

-- JSON documents that outgrow a page are compressed with lz4, several times faster than pglz
-- both to write (every decision) and to read (every explanation and export). A server built
-- without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE decisions
        ALTER COLUMN reasons SET COMPRESSION lz4,
        ALTER COLUMN thresholds SET COMPRESSION lz4,
        ALTER COLUMN evidence SET COMPRESSION lz4,
        ALTER COLUMN evaluations SET COMPRESSION lz4;
    ALTER TABLE provider_calls
        ALTER COLUMN request SET COMPRESSION lz4,
        ALTER COLUMN response SET COMPRESSION lz4;
    ALTER TABLE unico_processes ALTER COLUMN result SET COMPRESSION lz4;
    ALTER TABLE device_registrations
        ALTER COLUMN biometrics SET COMPRESSION lz4,
        ALTER COLUMN registration SET COMPRESSION lz4;
    ALTER TABLE onboarding_events ALTER COLUMN detail SET COMPRESSION lz4;
    ALTER TABLE callbacks ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE onboardings ALTER COLUMN device SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4; large JSON stays compressed with pglz';
END
$$;
