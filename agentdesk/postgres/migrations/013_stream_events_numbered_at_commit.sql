-- Events that come numbered (web/hub: a transaction of postgres.InTx sends
-- its event rows in the round trip of its COMMIT, each numbered by the
-- statement that inserts it) skip the commit trigger: numbering them again
-- would update every such row a second time, a second heap tuple and three
-- more index entries per event, for a number the row already has.
--
-- The guarantees of 004 hold for them: the statement that bumps the
-- stream's head runs just before the COMMIT in the same round trip, and
-- holds the head's row lock through the commit, as the trigger does.
DROP TRIGGER stream_events_number ON stream_events;
CREATE CONSTRAINT TRIGGER stream_events_number
    AFTER INSERT ON stream_events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.seq IS NULL) EXECUTE FUNCTION stream_events_number();
