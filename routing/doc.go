// Package routing is the ACD: it queues every inbound contact of every
// channel as a task and offers it to the best available agent, durably, in
// PostgreSQL.
//
// # What it owns
//
// Tables queues, queue_defaults, agent_presence, agent_presence_events, tasks
// and task_events (migration 002), and the rules over them: queues with
// channels, required skills, priority, business hours, holidays, service
// level, overflow, maximum wait and skill relaxation; agent presence
// (offline, available, away(reason), wrap_up(until), shown as busy when an
// available agent has work) with per-channel capacity (agents.capacity,
// copied into agent_presence by a trigger so matching compares integers)
// and load; the task state machine
//
//	queued → offered → assigned → wrapping → completed
//	offered → queued (reject, timeout, revoked)
//	queued|offered → abandoned | cancelled | overflowed
//
// and the events clients see (offers, revocations, assignments, presence,
// queue stats, queue positions). Every task transition writes a task_events
// row in the same transaction; reports read those rows.
//
// # Matching
//
// Waiting tasks are served highest priority first (priority rank × 100 +
// queue priority), then longest waiting (enqueued_at, kept across overflow
// and callbacks). For each task the agent chosen is, among those available
// with spare capacity on the task's capacity channel (a call blocks other
// work and other work blocks calls unless Config.VoiceAlongside), who have
// the required skill levels (after the relaxation steps the task reached) and
// belong to the queue's team if it has one: the customer's last agent within
// the sticky window, otherwise the agent offered work least recently
// (last_offer_at), which spreads work evenly. An offer reserves capacity
// until it is accepted, rejected or times out (15 s voice, 20 s otherwise);
// rejected and timed-out offers skip that agent for the task while anyone
// else can take it, and N timeouts in a row set the agent away("missed
// offers"). When every eligible agent has turned a task down, it waits
// RefusalBackoff (10 s, doubling each round up to 80 s) before it goes
// round them again; relaxation, a supervisor's move or an agent signing in
// ends the pause. Agents who are merely busy have not refused: the task
// waits for them without a pause.
//
// # Durability and locking
//
// PostgreSQL holds all state; the engine keeps none worth losing. A task
// exists once EnqueueTx's transaction commits, or once Enqueue's statement
// returns. Several engines (one per
// server process) can run against one database:
//
//   - The dispatcher claims waiting tasks with SELECT … FOR UPDATE SKIP
//     LOCKED, so each task is considered by one transaction at a time, and
//     picks agents with SELECT … FOR UPDATE OF agent_presence SKIP LOCKED.
//     Matching, reserving capacity and the event row are one statement per
//     task, and a batch of tasks is pipelined in one round trip; the
//     statements run in order inside the transaction, so each sees the
//     loads the previous ones reserved.
//     Because the agent row is locked before its load is incremented, and
//     PostgreSQL re-checks the capacity condition against the newest row
//     version when it takes the lock, two transactions can never both fill
//     an agent's last slot. The dispatcher never waits for a lock, so it
//     cannot deadlock.
//   - Offer on arrival: EnqueueTx's insert is one statement that, when no
//     task of the channel with as high a priority waits (not paused after
//     refusals), also picks and locks an agent exactly as the dispatcher
//     would (sticky agent, then least recently offered, SKIP LOCKED),
//     reserves the slot and writes both events. The offer then commits
//     with the contact: one durable transaction instead of two, and no
//     wake-up. A task that has to wait queues and leaves the order to the
//     dispatcher, so arrivals never jump the line. The agent row stays
//     locked until the caller's transaction commits; dispatchers skip it
//     meanwhile.
//   - One round trip: the engine keeps a copy of the queues it enqueues to
//     (queueCache), and the insert itself checks that copy against the
//     queue row's version (xmin) and, for a channel's default queue, the
//     default; a stale copy inserts nothing and is read again, so a change
//     made by any process is followed by the next contact. The customer's
//     sticky agent is read by the same statement. Enqueue, given a
//     publisher that takes committed events (CommittedPublisher), runs the
//     statement as its own transaction; with the hub's publisher, which
//     stores events with the change, it runs in one, which postgres.InTx
//     pipelines: BEGIN with the statement, the event rows with the COMMIT,
//     two round trips in all. Accept and Complete
//     likewise (Complete keeps its transaction while the agent is in
//     wrap-up: ending their last wrap-up changes their presence too). The
//     statements run with their generic plans (withGenericPlan):
//     PostgreSQL would otherwise plan the enqueue on every call, which cost
//     more than running it.
//   - Every other transition locks the task row first and the agent's
//     presence row second (two agents: in id order). Load counters
//     (load_voice/chat/email) change only in the transaction that changes
//     the tasks they count, so they never drift from the tasks table.
//   - Transactions failing on a deadlock or serialization error are retried.
//   - Across engines, and between the two dispatchers each engine runs,
//     strict ordering is approximate: while one pass holds the head of the
//     line, another skips it and serves the next tasks.
//
// Wake-ups: a change that may let a task be offered (a new task, freed
// capacity, an agent becoming available) wakes this engine's dispatchers
// directly once its transaction commits, and the other engines through
// NOTIFY agentdesk_routing (payload "account/engine"), sent after the commit
// by a goroutine of its own: a NOTIFY inside a transaction would hold
// PostgreSQL's cluster-wide notify lock through the commit. A channel's own
// transaction (EnqueueTx) gets the same after-commit wake-up when it runs
// through postgres.InTx. A completion frees capacity, but wakes anyone only
// when its statement found tasks of the account waiting: with every contact
// offered on arrival, most completions have nobody to serve. Wake-ups only
// speed things up: every SweepInterval each engine also dispatches every
// account with waiting tasks. Sweep, on its own goroutine, expires
// offers, ends wrap-ups, applies relaxation, overflow and maximum wait, and
// is also the crash recovery: Start runs it first, so offers made by a
// process that died re-queue when they time out. The clock is injected;
// every business time comes from it.
//
// Live queue stats read today's answered, within-service-level and abandoned
// counts from queue_day_counts (migration 012), kept by the accept and
// abandon transactions on 16 shards per queue and day, so publishing them
// every second costs the same at 9:00 and at 17:00; waiting and offered
// tasks come from their partial indexes alone, never from the queue's
// history (TestQueueStatsDoNotReadHistory). Every "is anything waiting"
// check (completion, arrival, wake-ups, stats) is anyWaiting: a walk of
// the line's partial index stopped at its head, which no statistics can
// turn into a scan of the history (TestWaitingChecksDoNotReadHistory).
//
// Events go through the Publisher inside the transaction of the change, so a
// Publisher that writes them to a table delivers exactly what committed. One
// engine at a time (advisory lock) publishes the periodic queue stats and
// positions.
//
// # What it must never do
//
// Import package web or know about HTTP; keep state only in memory; change
// a task or a load counter outside the transaction that records the event;
// wait for a lock while holding an agent lock taken out of order.
package routing
