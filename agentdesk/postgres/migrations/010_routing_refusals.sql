-- A task every eligible agent has turned down waits before it is offered to
-- them again, longer each round, instead of going round the same agents
-- every second: refused_rounds counts the rounds, retry_at is when the
-- dispatcher may offer it again (NULL: at once).
ALTER TABLE tasks
    ADD COLUMN refused_rounds int NOT NULL DEFAULT 0,
    ADD COLUMN retry_at timestamptz;
