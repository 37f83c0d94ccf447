-- Email channel: support addresses, IMAP mailboxes, the stored raw mail and
-- attachments, the Message-ID index that threads replies, the outbound outbox,
-- failing addresses and the auto-acknowledgement rate limit.

-- email_mailboxes maps a support address to the account, queue and team its
-- mail is routed to. The address is unique across accounts on purpose: the
-- SMTP server learns the account from the recipient, so it looks the address
-- up before it knows any account_id.
CREATE TABLE email_mailboxes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts(id),
    address       text NOT NULL UNIQUE CHECK (address = lower(address)),
    display_name  text NOT NULL DEFAULT '',
    queue_id      bigint NOT NULL DEFAULT 0,
    team_id       bigint,
    priority      text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    auto_ack      boolean NOT NULL DEFAULT false,
    -- what a reply to a closed ticket does: reopen it or open a linked follow-up
    closed_reply  text NOT NULL DEFAULT 'reopen' CHECK (closed_reply IN ('reopen', 'follow_up')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, team_id) REFERENCES teams(account_id, id)
);
CREATE INDEX email_mailboxes_account ON email_mailboxes (account_id, address);

-- email_imap_accounts are mailboxes polled over IMAP. The password is sealed
-- with AES-GCM under the server's key; the database never sees it in clear.
CREATE TABLE email_imap_accounts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint NOT NULL,
    mailbox_id       bigint NOT NULL,
    host             text NOT NULL,
    port             int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    security         text NOT NULL DEFAULT 'tls' CHECK (security IN ('tls', 'starttls', 'insecure')),
    username         text NOT NULL,
    password_sealed  bytea NOT NULL,
    folder           text NOT NULL DEFAULT 'INBOX',
    processed_folder text NOT NULL DEFAULT 'Processed',
    enabled          boolean NOT NULL DEFAULT true,
    last_polled_at   timestamptz,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, mailbox_id) REFERENCES email_mailboxes(account_id, id) ON DELETE CASCADE
);
CREATE INDEX email_imap_accounts_mailbox ON email_imap_accounts (account_id, mailbox_id);

-- email_blobs stores raw messages and attachments by content (sha256): the
-- same attachment sent ten times is stored once. Bytes live in the row, or in
-- a file at path for deployments that keep large blobs outside the database.
CREATE TABLE email_blobs (
    account_id  bigint NOT NULL REFERENCES accounts(id),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    size        bigint NOT NULL,
    bytes       bytea,
    path        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, sha256),
    CHECK (bytes IS NOT NULL OR path IS NOT NULL)
);

-- email_messages indexes every mail we received or sent by its Message-ID,
-- which is what replies quote in In-Reply-To and References. A row without
-- message_id is mail kept only raw (an unmatched bounce).
CREATE TABLE email_messages (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts(id),
    rfc_message_id text NOT NULL,
    message_id     bigint,
    ticket_id      bigint,
    mailbox_id     bigint,
    direction      text NOT NULL CHECK (direction IN ('in', 'out')),
    -- the customer side: the sender of inbound mail, the recipient of outbound
    peer_addr      text NOT NULL DEFAULT '',
    subject_key    text NOT NULL DEFAULT '',
    thread_root    text NOT NULL DEFAULT '',
    raw_sha256     bytea,
    auto_reply     boolean NOT NULL DEFAULT false,
    bounce         boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, rfc_message_id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages(account_id, id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets(account_id, id),
    FOREIGN KEY (account_id, raw_sha256) REFERENCES email_blobs(account_id, sha256)
);
CREATE INDEX email_messages_ticket ON email_messages (account_id, ticket_id, created_at);
CREATE INDEX email_messages_thread_root ON email_messages (account_id, thread_root) WHERE thread_root <> '';
CREATE INDEX email_messages_subject ON email_messages (account_id, peer_addr, subject_key, created_at DESC);

CREATE TABLE email_attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL,
    message_id   bigint NOT NULL,
    sha256       bytea NOT NULL,
    filename     text NOT NULL DEFAULT '',
    content_type text NOT NULL DEFAULT 'application/octet-stream',
    content_id   text NOT NULL DEFAULT '',
    inline       boolean NOT NULL DEFAULT false,
    size         bigint NOT NULL,
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages(account_id, id),
    FOREIGN KEY (account_id, sha256) REFERENCES email_blobs(account_id, sha256)
);
CREATE INDEX email_attachments_message ON email_attachments (account_id, message_id);

-- email_ticket_links records a follow-up ticket opened by a reply to a closed one.
CREATE TABLE email_ticket_links (
    account_id   bigint NOT NULL,
    ticket_id    bigint NOT NULL,
    follows_id   bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, ticket_id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets(account_id, id),
    FOREIGN KEY (account_id, follows_id) REFERENCES tickets(account_id, id)
);

-- email_deliveries is the outbox: one row per outbound mail, claimed by the
-- sender with FOR UPDATE SKIP LOCKED, retried with backoff, its state mirrored
-- into the message's meta so the desk shows it.
CREATE TABLE email_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL,
    message_id      bigint,
    ticket_id       bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('reply', 'auto_ack')),
    mail_from       text NOT NULL,
    rcpt_to         text[] NOT NULL,
    raw             bytea NOT NULL,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_answer     text NOT NULL DEFAULT '',
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, message_id) REFERENCES messages(account_id, id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets(account_id, id)
);
CREATE INDEX email_deliveries_ticket ON email_deliveries (account_id, ticket_id, created_at);
-- The sender's queue spans accounts, so this one index starts with the due time.
CREATE INDEX email_deliveries_due ON email_deliveries (next_attempt_at) WHERE state = 'queued';

-- email_failing_addresses are addresses a bounce reported as undeliverable.
CREATE TABLE email_failing_addresses (
    account_id   bigint NOT NULL REFERENCES accounts(id),
    address      text NOT NULL,
    status       text NOT NULL DEFAULT '',
    diagnostic   text NOT NULL DEFAULT '',
    bounces      int NOT NULL DEFAULT 1,
    first_at     timestamptz NOT NULL DEFAULT now(),
    last_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, address)
);

-- email_auto_acks rate-limits acknowledgements: one per sender per interval.
CREATE TABLE email_auto_acks (
    account_id   bigint NOT NULL REFERENCES accounts(id),
    address      text NOT NULL,
    last_sent_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, address)
);
