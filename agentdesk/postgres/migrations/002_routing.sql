-- Routing (ACD): queues, agent presence and load, routing tasks and their
-- event history. Package routing owns these tables; reports read task_events.

CREATE TABLE queues (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id             bigint NOT NULL REFERENCES accounts(id),
    name                   text NOT NULL,
    -- channels the queue takes; empty means any channel
    channels               text[] NOT NULL DEFAULT '{}',
    -- skill name -> minimum level 1..5, required of every agent who gets a task
    required_skills        jsonb NOT NULL DEFAULT '{}',
    -- only members of this team get the queue's tasks
    team_id                bigint,
    -- 0..99; breaks ties between tasks of equal priority across queues
    priority               int NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 99),
    timezone               text NOT NULL DEFAULT 'UTC',
    -- [{"day":1,"open":"09:00","close":"17:00"}], day 0 = Sunday; empty = always open
    business_hours         jsonb NOT NULL DEFAULT '[]',
    holidays               date[] NOT NULL DEFAULT '{}',
    closed_action          text NOT NULL DEFAULT 'queue'
                           CHECK (closed_action IN ('queue', 'overflow', 'message', 'callback')),
    sl_target_seconds      int NOT NULL DEFAULT 20 CHECK (sl_target_seconds > 0),
    sl_target_percent      int NOT NULL DEFAULT 80 CHECK (sl_target_percent BETWEEN 1 AND 100),
    max_wait_seconds       int NOT NULL DEFAULT 0 CHECK (max_wait_seconds >= 0),
    overflow_queue_id      bigint,
    overflow_after_seconds int NOT NULL DEFAULT 0 CHECK (overflow_after_seconds >= 0),
    -- [{"after_seconds":30,"max_level":2},{"after_seconds":90,"drop_skills":true}]
    relaxation             jsonb NOT NULL DEFAULT '[]',
    offer_timeout_seconds  int CHECK (offer_timeout_seconds > 0),
    wrap_up_seconds        int CHECK (wrap_up_seconds >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, team_id) REFERENCES teams(account_id, id) ON DELETE SET NULL (team_id),
    FOREIGN KEY (account_id, overflow_queue_id) REFERENCES queues(account_id, id) ON DELETE SET NULL (overflow_queue_id)
);

-- queue_defaults says which queue takes a channel's tasks when the caller
-- names none.
CREATE TABLE queue_defaults (
    account_id bigint NOT NULL,
    channel    text NOT NULL,
    queue_id   bigint NOT NULL,
    PRIMARY KEY (account_id, channel),
    FOREIGN KEY (account_id, queue_id) REFERENCES queues(account_id, id) ON DELETE CASCADE
);

-- agent_presence is one row per agent who ever signed in to routing. The
-- load_* counters are changed only in the transaction that changes the tasks
-- they count (offered + assigned), under this row's lock, so they never drift.
CREATE TABLE agent_presence (
    account_id     bigint NOT NULL,
    agent_id       bigint PRIMARY KEY,
    state          text NOT NULL DEFAULT 'offline'
                   CHECK (state IN ('offline', 'available', 'away', 'wrap_up')),
    away_reason    text NOT NULL DEFAULT '',
    since          timestamptz NOT NULL,
    wrap_up_until  timestamptz,
    -- fairness: the agent offered least recently goes first
    last_offer_at  timestamptz,
    last_assigned_at timestamptz,
    missed_offers  int NOT NULL DEFAULT 0,
    load_voice     int NOT NULL DEFAULT 0 CHECK (load_voice >= 0),
    load_chat      int NOT NULL DEFAULT 0 CHECK (load_chat >= 0),
    load_email     int NOT NULL DEFAULT 0 CHECK (load_email >= 0),
    -- copies of agents.capacity kept by the trigger below, so matching
    -- compares integers instead of parsing JSON for every candidate
    cap_voice      int NOT NULL DEFAULT 1,
    cap_chat       int NOT NULL DEFAULT 3,
    cap_email      int NOT NULL DEFAULT 5,
    FOREIGN KEY (account_id, agent_id) REFERENCES agents(account_id, id) ON DELETE CASCADE
);

CREATE FUNCTION routing_sync_capacity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agent_presence
    SET cap_voice = coalesce((NEW.capacity->>'voice')::int, 1),
        cap_chat  = coalesce((NEW.capacity->>'chat')::int, 3),
        cap_email = coalesce((NEW.capacity->>'email')::int, 5)
    WHERE agent_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER agents_routing_capacity AFTER UPDATE OF capacity ON agents
    FOR EACH ROW WHEN (OLD.capacity IS DISTINCT FROM NEW.capacity) EXECUTE FUNCTION routing_sync_capacity();
CREATE INDEX agent_presence_match ON agent_presence (account_id, last_offer_at NULLS FIRST, agent_id)
    WHERE state = 'available';
CREATE INDEX agent_presence_wrap ON agent_presence (wrap_up_until) WHERE state = 'wrap_up';

CREATE TABLE agent_presence_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL,
    agent_id   bigint NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    by_agent_id bigint,
    at         timestamptz NOT NULL
);
CREATE INDEX agent_presence_events_agent ON agent_presence_events (account_id, agent_id, at);

CREATE TABLE tasks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint NOT NULL,
    queue_id         bigint NOT NULL,
    channel          text NOT NULL,
    -- the capacity the task uses: voice, chat or email
    capacity_channel text NOT NULL CHECK (capacity_channel IN ('voice', 'chat', 'email')),
    direction        text NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
    state            text NOT NULL CHECK (state IN ('queued', 'offered', 'assigned', 'wrapping', 'completed',
                                                    'abandoned', 'cancelled', 'overflowed')),
    -- priority rank * 100 + queue priority: higher goes first
    priority         int NOT NULL,
    priority_name    text NOT NULL,
    ticket_id        bigint,
    customer_id      bigint,
    -- the queue's skills merged with request_skills, what matching reads
    required_skills  jsonb NOT NULL DEFAULT '{}',
    -- the skills the contact itself asked for; kept so a move to another
    -- queue recomputes required_skills from that queue's
    request_skills   jsonb NOT NULL DEFAULT '{}',
    attributes       jsonb NOT NULL DEFAULT '{}',
    -- the task's place in line; kept across overflow and callbacks
    enqueued_at      timestamptz NOT NULL,
    queue_entered_at timestamptz NOT NULL,
    relax_step       int NOT NULL DEFAULT 0,
    sticky_agent_id  bigint,
    offered_to       bigint,
    offer_expires_at timestamptz,
    offer_count      int NOT NULL DEFAULT 0,
    -- agents who rejected or missed this task; skipped while others can take it
    excluded_agents  bigint[] NOT NULL DEFAULT '{}',
    agent_id         bigint,
    assigned_at      timestamptz,
    ended_at         timestamptz,
    completed_at     timestamptz,
    closed_at        timestamptz,
    wait_seconds     int,
    reason           text NOT NULL DEFAULT '',
    callback_number  text NOT NULL DEFAULT '',
    parent_task_id   bigint,
    contact_reason_id      bigint,
    cancellation_reason_id bigint,
    resolution_code        text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL,
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, queue_id) REFERENCES queues(account_id, id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets(account_id, id),
    FOREIGN KEY (account_id, customer_id) REFERENCES customers(account_id, id),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents(account_id, id),
    FOREIGN KEY (account_id, contact_reason_id) REFERENCES reasons(account_id, id),
    FOREIGN KEY (account_id, cancellation_reason_id) REFERENCES reasons(account_id, id),
    CHECK (state <> 'offered' OR (offered_to IS NOT NULL AND offer_expires_at IS NOT NULL)),
    CHECK (state NOT IN ('assigned', 'wrapping', 'completed') OR agent_id IS NOT NULL)
);
-- the dispatcher's order: highest priority, then longest waiting
CREATE INDEX tasks_queued ON tasks (account_id, priority DESC, enqueued_at, id) WHERE state = 'queued';
CREATE INDEX tasks_queued_queue ON tasks (account_id, queue_id, priority DESC, enqueued_at, id) WHERE state = 'queued';
CREATE INDEX tasks_offer_expiry ON tasks (offer_expires_at) WHERE state = 'offered';
CREATE INDEX tasks_agent_active ON tasks (account_id, agent_id) WHERE state IN ('assigned', 'wrapping');
CREATE INDEX tasks_offered_to ON tasks (account_id, offered_to) WHERE state = 'offered';
-- sticky routing: the customer's most recent agent
CREATE INDEX tasks_customer_agent ON tasks (account_id, customer_id, assigned_at DESC) WHERE agent_id IS NOT NULL;
-- stats and service level of a queue over a day
CREATE INDEX tasks_queue_day ON tasks (account_id, queue_id, enqueued_at);
CREATE INDEX tasks_completed ON tasks (account_id, queue_id, completed_at DESC) WHERE state = 'completed';

-- task_events is the history of every task transition, for reports.
CREATE TABLE task_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL,
    task_id    bigint NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    agent_id   bigint,
    queue_id   bigint,
    reason     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL,
    FOREIGN KEY (account_id, task_id) REFERENCES tasks(account_id, id)
);
CREATE INDEX task_events_task ON task_events (account_id, task_id, id);
CREATE INDEX task_events_at ON task_events (account_id, at);
