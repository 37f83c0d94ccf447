-- The web chat channel: chat widgets embedded on customers' sites, the
-- chats started from them, and the customer's satisfaction rating (CSAT)
-- on a ticket.

-- A chat widget: `<script src="…/widget.js" data-widget="PUBLIC_ID">`.
-- public_id is what the page names, so it is unique across accounts (the
-- widget's public endpoints find the account through it); every other index
-- starts with account_id.
CREATE TABLE chat_widgets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts(id),
    public_id        text NOT NULL UNIQUE CHECK (public_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- origins (scheme://host[:port]) the widget may run on; '*' allows any
    allowed_origins  text[] NOT NULL DEFAULT '{}',
    -- where a chat goes when the visitor picks no topic; NULL = the account's
    -- default chat queue
    default_queue_id bigint,
    title            text NOT NULL DEFAULT '',
    greeting         text NOT NULL DEFAULT '',
    -- when no queue of the widget is open: 'message' shows "leave a message"
    -- (an email ticket), 'queue' lets chats wait for the queue to open
    offline_behaviour text NOT NULL DEFAULT 'message' CHECK (offline_behaviour IN ('message', 'queue')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, default_queue_id) REFERENCES queues(account_id, id)
);
CREATE INDEX chat_widgets_account ON chat_widgets (account_id, created_at, id);

-- The topics of a widget's pre-chat form, in order: each sends the chat to
-- a queue.
CREATE TABLE chat_widget_topics (
    account_id bigint NOT NULL,
    widget_id  bigint NOT NULL,
    position   int NOT NULL,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    queue_id   bigint NOT NULL,
    PRIMARY KEY (account_id, widget_id, position),
    FOREIGN KEY (account_id, widget_id) REFERENCES chat_widgets(account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, queue_id) REFERENCES queues(account_id, id)
);

-- One chat: a chat ticket started from a widget by a visitor, its routing
-- task, and how it ended. The visitor's open chat is the newest one not
-- ended.
CREATE TABLE chats (
    account_id bigint NOT NULL,
    ticket_id  bigint NOT NULL,
    widget_id  bigint NOT NULL,
    visitor_id text NOT NULL,
    task_id    bigint,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    ended_by   text CHECK (ended_by IN ('visitor', 'agent')),
    PRIMARY KEY (account_id, ticket_id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets(account_id, id),
    FOREIGN KEY (account_id, widget_id) REFERENCES chat_widgets(account_id, id)
);
CREATE INDEX chats_visitor ON chats (account_id, visitor_id, ticket_id DESC);
CREATE INDEX chats_task ON chats (account_id, task_id) WHERE task_id IS NOT NULL;

-- CSAT: the customer's rating of how the ticket was handled.
ALTER TABLE tickets
    ADD COLUMN csat_rating   smallint CHECK (csat_rating BETWEEN 1 AND 5),
    ADD COLUMN csat_comment  text NOT NULL DEFAULT '',
    ADD COLUMN csat_rated_at timestamptz;
