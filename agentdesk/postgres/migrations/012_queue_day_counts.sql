-- queue_day_counts keeps each queue's answered, answered-within-service-level
-- and abandoned contacts per day (the queue's own calendar day), written in
-- the transaction of each accept and abandon. The live queue stats, published
-- every second, read these few rows instead of all of the day's tasks, whose
-- number grows all day (a full day of a busy queue is millions of rows).
-- Each queue-day is spread over 16 shards (by task id) so that concurrent
-- accepts on one queue do not wait for each other on a single row.
CREATE TABLE queue_day_counts (
    account_id bigint   NOT NULL,
    queue_id   bigint   NOT NULL,
    day        date     NOT NULL,
    shard      smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    answered   int      NOT NULL DEFAULT 0,
    within_sl  int      NOT NULL DEFAULT 0,
    abandoned  int      NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, queue_id, day, shard)
);

-- The history so far, counted the same way: on the day a contact was
-- answered or abandoned, in its queue's time zone.
INSERT INTO queue_day_counts (account_id, queue_id, day, shard, answered, within_sl, abandoned)
SELECT account_id, queue_id, day, 0, sum(answered), sum(within_sl), sum(abandoned)
FROM (
    SELECT t.account_id, t.queue_id, (t.assigned_at AT TIME ZONE q.timezone)::date AS day,
           1 AS answered, CASE WHEN t.wait_seconds <= q.sl_target_seconds THEN 1 ELSE 0 END AS within_sl, 0 AS abandoned
    FROM tasks t JOIN queues q ON q.account_id = t.account_id AND q.id = t.queue_id
    WHERE t.assigned_at IS NOT NULL
    UNION ALL
    SELECT t.account_id, t.queue_id, (t.closed_at AT TIME ZONE q.timezone)::date, 0, 0, 1
    FROM tasks t JOIN queues q ON q.account_id = t.account_id AND q.id = t.queue_id
    WHERE t.state = 'abandoned' AND t.closed_at IS NOT NULL
) x
GROUP BY account_id, queue_id, day;
