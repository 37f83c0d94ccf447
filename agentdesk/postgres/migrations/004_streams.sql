-- Durable event streams for the websocket hubs (package web/hub).
--
-- A stream ("agent:42", "supervisor:7", "visitor:abc", "ticket:9") is an
-- ordered log of events per account. Every event gets a per-stream sequence
-- number that is gap-free and commit-ordered: a reader that has seen seq N and
-- reads "seq > N" never skips an event that commits later.
--
-- How: Publish inserts the event with seq NULL inside the caller's
-- transaction. A deferred constraint trigger numbers it at COMMIT time by
-- bumping the stream's row in stream_heads. The row lock taken there is held
-- only from the pre-commit trigger until the commit finishes, so writers to
-- one hot stream serialise on their commits only, not on the whole
-- transaction, and writers to different streams never wait on each other.
-- PostgreSQL makes a committed transaction visible before it releases its
-- row locks, so the next writer's number is always higher than every number
-- already visible.
--
-- Waking the hubs: the trigger does not NOTIFY. A transaction that NOTIFYs
-- holds a cluster-wide lock from its pre-commit until its commit record is
-- flushed, so every publishing transaction would queue behind every other
-- one's fsync (measured: ~380 commits/s on the benchmark machine, whatever
-- the streams). Instead each head carries change_id from a sequence, and
-- every hub polls "change_id > watermark" every few milliseconds (an index
-- range scan over the last moments' changes), plus a slower full poll of
-- the heads it follows, which alone guarantees delivery.

CREATE TABLE stream_heads (
    account_id bigint NOT NULL REFERENCES accounts(id),
    stream     text   NOT NULL,
    -- last assigned sequence number; never reset, so numbers are never reused
    last_seq   bigint NOT NULL DEFAULT 0,
    -- from stream_change_seq at each commit that moved last_seq
    change_id  bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, stream)
);
CREATE SEQUENCE stream_change_seq;
-- The change feed reads across accounts (one query per hub, not per
-- account), so this index does not start with account_id.
CREATE INDEX stream_heads_change ON stream_heads (change_id);

CREATE TABLE stream_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id),
    stream     text   NOT NULL CHECK (length(stream) BETWEEN 3 AND 200),
    -- NULL only inside the writing transaction; set by the commit trigger
    seq        bigint,
    type       text   NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    data       jsonb  NOT NULL DEFAULT 'null',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX stream_events_account_stream_seq ON stream_events (account_id, stream, seq);
-- the retention sweep finds old events per account
CREATE INDEX stream_events_account_created ON stream_events (account_id, created_at);

CREATE FUNCTION stream_events_number() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO stream_heads AS h (account_id, stream, last_seq, change_id)
    VALUES (NEW.account_id, NEW.stream, 1, nextval('stream_change_seq'))
    ON CONFLICT (account_id, stream)
    DO UPDATE SET last_seq = h.last_seq + 1, change_id = nextval('stream_change_seq'), updated_at = now()
    RETURNING h.last_seq INTO n;
    UPDATE stream_events SET seq = n WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER stream_events_number
    AFTER INSERT ON stream_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION stream_events_number();
