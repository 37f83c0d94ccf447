-- Canned responses: reply texts agents insert into the composer. A row is
-- shared with the whole account (team_id and agent_id NULL), with one team
-- (team_id), or personal to one agent (agent_id). Owned by
-- agentdesk/postgres/canned.go.

CREATE TABLE canned_responses (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id),
    title      text NOT NULL CHECK (title <> ''),
    body       text NOT NULL CHECK (body <> '' AND char_length(body) <= 10000),
    -- '' when the response has no shortcut.
    shortcut   text NOT NULL DEFAULT '' CHECK (shortcut ~ '^[a-z0-9_-]{0,32}$'),
    team_id    bigint,
    agent_id   bigint,
    -- NULL when an API token created it, or its author was removed.
    created_by bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (team_id IS NULL OR agent_id IS NULL),
    FOREIGN KEY (account_id, team_id) REFERENCES teams(account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, agent_id) REFERENCES agents(account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, created_by) REFERENCES agents(account_id, id) ON DELETE SET NULL (created_by)
);

-- A shortcut is unique within its owner's scope: the account's shared ones,
-- one team's, one agent's.
CREATE UNIQUE INDEX canned_responses_scope_shortcut
    ON canned_responses (account_id, coalesce(team_id, 0), coalesce(agent_id, 0), shortcut) WHERE shortcut <> '';

-- The list is ordered by title; the scope filter is applied on the rows of
-- the account (a few hundred at most).
CREATE INDEX canned_responses_list ON canned_responses (account_id, lower(title), id);
