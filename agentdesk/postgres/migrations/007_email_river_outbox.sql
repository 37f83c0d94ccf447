-- The email outbox runs on River (its tables come from River's own
-- migrations, applied by the same migrate step): River schedules, claims and
-- retries the delivery jobs. email_deliveries stays the record of what is
-- sent (the raw mail, its state, attempts and the relay's last answer) and
-- names the River job that delivers it; the due-time column and index the
-- previous claim loop used are gone.
DROP INDEX IF EXISTS email_deliveries_due;
ALTER TABLE email_deliveries DROP COLUMN next_attempt_at;
ALTER TABLE email_deliveries ADD COLUMN river_job_id bigint;

-- An IMAP server with a certificate from a private CA: the PEM bundle its
-- certificate is verified against ('' = the system's roots, or the server's
-- --imap-ca-file).
ALTER TABLE email_imap_accounts ADD COLUMN ca_pem text NOT NULL DEFAULT '' CHECK (length(ca_pem) <= 65536);
