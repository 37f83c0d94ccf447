-- Attachments on every channel: files agents and chat visitors upload, and
-- the files of inbound and outbound email, listed on their messages in one
-- shape and downloaded through one URL (/api/v1/attachments/{id}/content).
-- The bytes stay in email_blobs, stored once per account by SHA-256; an
-- upload row is a file name and type on top of a blob.

-- uploads is one file as a message carries it. An upload starts unlinked
-- (message_id NULL: only its uploader sees it) and is linked once, in the
-- transaction that writes its message. Files of email get a row from the
-- trigger below (email_attachment_id), so the email package needs no change.
CREATE TABLE uploads (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id          bigint NOT NULL REFERENCES accounts(id),
    sha256              bytea NOT NULL,
    filename            text NOT NULL,
    content_type        text NOT NULL,
    size                bigint NOT NULL CHECK (size >= 0),
    uploaded_by_agent   bigint,
    uploaded_by_token   bigint,
    uploaded_by_visitor text,
    email_attachment_id bigint,
    message_id          bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, sha256) REFERENCES email_blobs(account_id, sha256),
    FOREIGN KEY (account_id, uploaded_by_agent) REFERENCES agents(account_id, id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages(account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, email_attachment_id) REFERENCES email_attachments(account_id, id) ON DELETE CASCADE
);
CREATE INDEX uploads_message ON uploads (account_id, message_id, id) WHERE message_id IS NOT NULL;
CREATE UNIQUE INDEX uploads_email_attachment ON uploads (account_id, email_attachment_id) WHERE email_attachment_id IS NOT NULL;
-- what a visitor or agent uploaded and has not sent yet
CREATE INDEX uploads_unlinked ON uploads (account_id, created_at) WHERE message_id IS NULL;

-- Every email attachment is listed as an upload of its message. An outbound
-- reply whose files were uploaded by the agent already has them linked (in
-- the same transaction, before the mail's attachments are written), so the
-- same file is not listed twice.
CREATE FUNCTION uploads_of_email_attachment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO uploads (account_id, sha256, filename, content_type, size, email_attachment_id, message_id)
    SELECT NEW.account_id, NEW.sha256, NEW.filename, NEW.content_type, NEW.size, NEW.id, NEW.message_id
    WHERE NOT EXISTS (SELECT 1 FROM uploads u
                      WHERE u.account_id = NEW.account_id AND u.message_id = NEW.message_id AND u.sha256 = NEW.sha256);
    RETURN NULL;
END $$;

CREATE TRIGGER email_attachments_uploads AFTER INSERT ON email_attachments
    FOR EACH ROW EXECUTE FUNCTION uploads_of_email_attachment();

-- mail received before this migration
INSERT INTO uploads (account_id, sha256, filename, content_type, size, email_attachment_id, message_id, created_at)
SELECT a.account_id, a.sha256, a.filename, a.content_type, a.size, a.id, a.message_id, m.created_at
FROM email_attachments a JOIN messages m ON m.account_id = a.account_id AND m.id = a.message_id
ORDER BY a.id;
