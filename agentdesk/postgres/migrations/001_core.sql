-- Core schema: tenants, people, customers and their identities, tickets and
-- their timeline, reasons, orders, auth, audit. Every business table carries
-- account_id, and every unique or lookup index starts with it.

CREATE TABLE accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    -- secret for HMAC-signed shop webhooks (inbound/order); never logged
    order_webhook_secret text NOT NULL DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts(id),
    email         text NOT NULL,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    password_hash text NOT NULL DEFAULT '',
    capacity      jsonb NOT NULL DEFAULT '{"voice":1,"chat":3,"email":5}',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, email),
    UNIQUE (account_id, id)
);

CREATE TABLE teams (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id),
    name       text NOT NULL,
    private    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name),
    UNIQUE (account_id, id)
);

CREATE TABLE team_members (
    account_id bigint NOT NULL,
    team_id    bigint NOT NULL,
    agent_id   bigint NOT NULL,
    PRIMARY KEY (team_id, agent_id),
    FOREIGN KEY (account_id, team_id) REFERENCES teams(account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, agent_id) REFERENCES agents(account_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_agent ON team_members (agent_id);

CREATE TABLE skills (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id),
    name       text NOT NULL,
    UNIQUE (account_id, name),
    UNIQUE (account_id, id)
);

CREATE TABLE agent_skills (
    account_id bigint NOT NULL,
    agent_id   bigint NOT NULL,
    skill_id   bigint NOT NULL,
    level      int NOT NULL CHECK (level BETWEEN 1 AND 5),
    PRIMARY KEY (agent_id, skill_id),
    FOREIGN KEY (account_id, agent_id) REFERENCES agents(account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, skill_id) REFERENCES skills(account_id, id) ON DELETE CASCADE
);

CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    account_id  bigint NOT NULL,
    agent_id    bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    FOREIGN KEY (account_id, agent_id) REFERENCES agents(account_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts(id),
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    scopes       text[] NOT NULL DEFAULT '{}',
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    UNIQUE (account_id, name)
);

CREATE TABLE companies (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id),
    name       text NOT NULL,
    domain     text,
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id)
);
CREATE UNIQUE INDEX companies_domain ON companies (account_id, domain) WHERE domain IS NOT NULL;
CREATE INDEX companies_list ON companies (account_id, created_at DESC, id DESC);

CREATE TABLE customers (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id        bigint NOT NULL REFERENCES accounts(id),
    name              text NOT NULL DEFAULT '',
    company_id        bigint,
    lifecycle_stage   text NOT NULL DEFAULT 'customer'
                      CHECK (lifecycle_stage IN ('lead', 'prospect', 'customer', 'churned')),
    preferred_channel text NOT NULL DEFAULT '',
    attributes        jsonb NOT NULL DEFAULT '{}',
    -- set while this customer is merged into another; the row is kept so an
    -- unmerge can restore it exactly
    merged_into       bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, company_id) REFERENCES companies(account_id, id)
);
CREATE INDEX customers_list ON customers (account_id, created_at DESC, id DESC) WHERE merged_into IS NULL;
CREATE INDEX customers_company ON customers (account_id, company_id) WHERE company_id IS NOT NULL;
CREATE INDEX customers_name ON customers (account_id, lower(name) text_pattern_ops);

CREATE TABLE identities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL,
    customer_id bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('email', 'phone', 'visitor', 'social', 'shop')),
    network     text NOT NULL DEFAULT '',
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, kind, network, value),
    FOREIGN KEY (account_id, customer_id) REFERENCES customers(account_id, id)
);
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE reasons (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    kind        text NOT NULL CHECK (kind IN ('contact', 'cancellation')),
    parent_id   bigint,
    name        text NOT NULL,
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, parent_id) REFERENCES reasons(account_id, id)
);
CREATE UNIQUE INDEX reasons_name ON reasons (account_id, kind, coalesce(parent_id, 0), lower(name));

CREATE TABLE custom_statuses (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id),
    name       text NOT NULL,
    maps_to    text NOT NULL CHECK (maps_to IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
    UNIQUE (account_id, name)
);

CREATE TABLE tickets (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id             bigint NOT NULL,
    subject                text NOT NULL,
    status                 text NOT NULL CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
    custom_status          text NOT NULL DEFAULT '',
    priority               text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    channel                text NOT NULL,
    customer_id            bigint NOT NULL,
    assignee_id            bigint,
    team_id                bigint,
    tags                   text[] NOT NULL DEFAULT '{}',
    contact_reason_id      bigint,
    resolution_code        text NOT NULL DEFAULT '',
    cancellation_reason_id bigint,
    revenue_lost_cents     bigint NOT NULL DEFAULT 0,
    retention_offered      boolean NOT NULL DEFAULT false,
    retention_accepted     boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    first_response_at      timestamptz,
    resolved_at            timestamptz,
    closed_at              timestamptz,
    first_response_seconds bigint,
    resolution_seconds     bigint,
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, customer_id) REFERENCES customers(account_id, id),
    FOREIGN KEY (account_id, assignee_id) REFERENCES agents(account_id, id),
    FOREIGN KEY (account_id, team_id) REFERENCES teams(account_id, id),
    FOREIGN KEY (account_id, contact_reason_id) REFERENCES reasons(account_id, id),
    FOREIGN KEY (account_id, cancellation_reason_id) REFERENCES reasons(account_id, id),
    CHECK (resolution_code NOT IN ('cancellation', 'retained') OR cancellation_reason_id IS NOT NULL)
);
CREATE INDEX tickets_list ON tickets (account_id, created_at DESC, id DESC);
CREATE INDEX tickets_assignee ON tickets (account_id, assignee_id, created_at DESC, id DESC) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_team ON tickets (account_id, team_id, created_at DESC, id DESC) WHERE team_id IS NOT NULL;
CREATE INDEX tickets_customer ON tickets (account_id, customer_id, created_at DESC, id DESC);
CREATE INDEX tickets_open ON tickets (account_id, status, created_at DESC, id DESC) WHERE status NOT IN ('solved', 'closed');

CREATE TABLE messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL,
    ticket_id   bigint NOT NULL,
    customer_id bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('email', 'chat', 'call', 'form', 'order_event', 'social', 'in_person', 'note')),
    direction   text NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
    author_id   bigint,
    subject     text NOT NULL DEFAULT '',
    body        text NOT NULL DEFAULT '',
    meta        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, id),
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets(account_id, id),
    FOREIGN KEY (account_id, customer_id) REFERENCES customers(account_id, id),
    FOREIGN KEY (account_id, author_id) REFERENCES agents(account_id, id)
);
CREATE INDEX messages_ticket ON messages (ticket_id, created_at, id);
CREATE INDEX messages_customer ON messages (account_id, customer_id, created_at DESC, id DESC);

CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL,
    external_id  text NOT NULL,
    customer_id  bigint NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency     char(3) NOT NULL,
    items        jsonb NOT NULL DEFAULT '[]',
    status       text NOT NULL,
    placed_at    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, external_id),
    FOREIGN KEY (account_id, customer_id) REFERENCES customers(account_id, id)
);
CREATE INDEX orders_customer ON orders (account_id, customer_id, placed_at DESC, id DESC);

-- merges keeps, for each merge, exactly which rows moved, so an unmerge
-- can move them back and restore the merged customer as it was.
CREATE TABLE merges (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL,
    survivor_id bigint NOT NULL,
    merged_id   bigint NOT NULL,
    moved       jsonb NOT NULL,
    survivor_before jsonb NOT NULL,
    actor       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    undone_at   timestamptz,
    FOREIGN KEY (account_id, survivor_id) REFERENCES customers(account_id, id),
    FOREIGN KEY (account_id, merged_id) REFERENCES customers(account_id, id)
);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL,
    agent_id   bigint,
    token_id   bigint,
    action     text NOT NULL,
    target     text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_list ON audit_log (account_id, created_at DESC, id DESC);

-- idempotency_keys remembers the response to a create request so a retried
-- request with the same key gets the same answer instead of a duplicate.
CREATE TABLE idempotency_keys (
    account_id   bigint NOT NULL,
    principal    text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       int,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, principal, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
