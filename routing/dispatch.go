package routing

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Dispatch offers waiting tasks to agents until nothing more can be matched,
// and returns how many offers it made. Safe to call from several engines at
// once: tasks are claimed with FOR UPDATE SKIP LOCKED and agents likewise, so
// two engines never touch the same task or agent row at the same time.
func (e *Engine) Dispatch(ctx context.Context) (int, error) {
	return e.dispatchWhere(ctx, `
SELECT a.id FROM accounts a
WHERE `+anyWaiting("a.id", ""))
}

// anyWaiting is an SQL condition: account (an SQL expression) has a task
// queued, one that also matches and (SQL that begins with AND, on alias
// w) if given. It reads the line, never the history.
//
// Why not EXISTS: PostgreSQL drops an EXISTS's ORDER BY and LIMIT, and
// when the statistics say many tasks are queued (a busy center, and
// whenever ANALYZE ran with a line) it prices a sequential scan as meeting
// one within its first pages. The queued tasks are the newest, at the end
// of the table behind the whole history, so that scan read all of it:
// every completion and every enqueue read 1,500 pages with one day of
// history (18 ms a completion under load, BENCHMARKS.md), and more with
// every day. In the walk of the partial index tasks_queued, ordered as it
// is and stopped at the first row, the statistics cannot mislead.
func anyWaiting(account, and string) string {
	return `((SELECT true FROM tasks w WHERE w.account_id = ` + account + ` AND w.state = 'queued'` + and + `
	ORDER BY w.account_id, w.priority DESC, w.enqueued_at, w.id LIMIT 1) IS NOT NULL)`
}

// dispatchWoken dispatches the accounts a wake-up named that have tasks
// waiting. Most wake-ups (freed capacity, with every contact offered on
// arrival) find none, and this one read is then all they cost, instead of a
// dispatch transaction each.
func (e *Engine) dispatchWoken(ctx context.Context, woken []int64) (int, error) {
	return e.dispatchWhere(ctx, `
SELECT a FROM unnest($1::bigint[]) a
WHERE `+anyWaiting("a", ""), woken)
}

// dispatchWhere dispatches the accounts the query names.
func (e *Engine) dispatchWhere(ctx context.Context, accountsSQL string, args ...any) (int, error) {
	rows, err := e.db.Query(ctx, accountsSQL, args...)
	if err != nil {
		return 0, err
	}
	accounts, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	return e.dispatchAccounts(ctx, accounts)
}

// dispatchAccounts dispatches the waiting tasks of the given accounts.
func (e *Engine) dispatchAccounts(ctx context.Context, accounts []int64) (int, error) {
	total := 0
	for _, acct := range accounts {
		for {
			n, full, err := e.dispatchBatch(ctx, acct)
			total += n
			if err != nil {
				return total, fmt.Errorf("dispatch account %d: %w", acct, err)
			}
			if !full || n == 0 {
				break
			}
		}
	}
	return total, nil
}

// queueRules is what matching needs of a queue.
type queueRules struct {
	teamID       *int64
	relaxation   []RelaxStep
	offerTimeout *int
}

type waitingTask struct {
	id, queueID          int64
	channel, capChannel  string
	direction, priority  string
	ticketID, customerID *int64
	skills               map[string]int
	attributes           map[string]any
	enqueuedAt           time.Time
	relaxStep            int
	stickyAgent          int64
	excluded             []int64
	callback             string
}

const selectWaiting = `
SELECT id, queue_id, channel, capacity_channel, direction, priority_name, ticket_id, customer_id,
	required_skills, attributes, enqueued_at, relax_step, coalesce(sticky_agent_id, 0), excluded_agents, callback_number
FROM tasks
WHERE account_id = $1 AND state = 'queued' AND (retry_at IS NULL OR retry_at <= $3)
ORDER BY priority DESC, enqueued_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// matchWhere is the eligibility of agent_presence p (joined to agents a)
// for a task: signed in and available, spare capacity on the channel (a call
// and other work exclude each other unless $3), not excluded, in the team,
// with every required skill at the level.
const matchWhere = `
p.account_id = $1 AND p.state = 'available' AND a.active
  AND %s
  AND p.agent_id <> ALL($4::bigint[])
  AND ($5::bigint IS NULL OR EXISTS (
        SELECT 1 FROM team_members tm WHERE tm.team_id = $5 AND tm.agent_id = p.agent_id))
  AND NOT EXISTS (
        SELECT 1 FROM unnest($6::text[], $7::int[]) r(name, lvl)
        WHERE NOT EXISTS (
          SELECT 1 FROM agent_skills s JOIN skills k ON k.id = s.skill_id
          WHERE s.agent_id = p.agent_id AND k.account_id = $1 AND k.name = r.name AND s.level >= r.lvl))`

// roomFor is the spare-capacity condition per capacity channel, written out
// per channel (not a CASE on a parameter) so that the cached generic plan of
// each statement walks the fairness index instead of sorting every agent.
// $3 is Config.VoiceAlongside; $2 is unused and kept for a stable signature.
var roomFor = map[string]string{
	"voice": `$2::text IS NOT NULL AND p.load_voice < p.cap_voice AND ($3 OR (p.load_chat = 0 AND p.load_email = 0))`,
	"chat":  `$2::text IS NOT NULL AND p.load_chat < p.cap_chat AND ($3 OR p.load_voice = 0)`,
	"email": `$2::text IS NOT NULL AND p.load_email < p.cap_email AND ($3 OR p.load_voice = 0)`,
}

// pickAgent chooses the agent for a task and locks their presence row: the
// sticky agent (%[3]s, 0 for none) first, and coalesce evaluates the
// general search (the agent offered work least recently) only when that
// finds no one. Both searches skip rows locked by another transaction.
// %[2]s is the eligibility (matchWhere with the channel's room).
const pickAgent = `SELECT coalesce(
		(SELECT p.agent_id FROM agent_presence p JOIN agents a ON a.id = p.agent_id
		 WHERE %[3]s <> 0 AND p.agent_id = %[3]s AND %[2]s
		 FOR UPDATE OF p SKIP LOCKED),
		(SELECT p.agent_id FROM agent_presence p JOIN agents a ON a.id = p.agent_id
		 WHERE %[2]s
		 ORDER BY p.last_offer_at NULLS FIRST, p.agent_id
		 LIMIT 1
		 FOR UPDATE OF p SKIP LOCKED)) AS agent_id`

// offerSQL matches and offers one task in a single statement, so a batch of
// tasks costs one round trip (the statements are pipelined). The updates
// and the event row follow from the agent pickAgent chose.
// %[1]s is the load column of the task's capacity channel.
const offerSQL = `
WITH pick AS (
	` + pickAgent + `
), task AS (
	UPDATE tasks t SET state = 'offered', offered_to = pick.agent_id, offer_expires_at = $10,
		offer_count = t.offer_count + 1, updated_at = $11
	FROM pick
	WHERE t.account_id = $1 AND t.id = $9 AND pick.agent_id IS NOT NULL
	RETURNING t.id
), agent AS (
	UPDATE agent_presence ap SET %[1]s = ap.%[1]s + 1, last_offer_at = $11
	FROM pick
	WHERE ap.agent_id = pick.agent_id
	RETURNING ap.agent_id
), event AS (
	INSERT INTO task_events (account_id, task_id, from_state, to_state, agent_id, queue_id, reason, at)
	SELECT $1, $9, 'queued', 'offered', agent_id, $12, '', $11 FROM pick WHERE agent_id IS NOT NULL
)
SELECT coalesce(pick.agent_id, 0) FROM pick`

// enqueueSQL inserts a task with its first event and, when $25 allows and
// no task waits ahead of it on its capacity channel (as high a priority,
// not paused after refusals), offers it at once to the agent offerSQL would
// pick, with the same locks: the reservation and the "offered" event are
// part of the same statement. $1–$7 are matchWhere's; %[1]s is the load
// column, %[2]s the eligibility.
//
// The statement also reads what the engine would otherwise ask for first,
// so that an enqueue is one round trip:
//   - the customer's sticky agent: their last agent assigned since $8
//     (NULL: no sticky routing);
//   - a guard on the engine's copy of the queue: the task is inserted only
//     while queue $20 is the version the engine read ($27, the row's xmin)
//     and, for a task sent to its channel's default queue ($28, the
//     channels looked up; NULL when the queue was named), while that queue
//     is still the default. Otherwise no row comes back and the engine
//     reads the queue again.
var enqueueSQL = `
WITH guard AS (
	SELECT 1 FROM queues g
	WHERE g.account_id = $1 AND g.id = $20 AND g.xmin::text::bigint = $27
	  AND ($28::text[] IS NULL OR g.id = (
		SELECT d.queue_id FROM queue_defaults d WHERE d.account_id = $1 AND d.channel = ANY($28)
		ORDER BY d.channel = $10 DESC LIMIT 1))
), sticky AS (
	SELECT coalesce((
		SELECT s.agent_id FROM tasks s
		WHERE s.account_id = $1 AND s.customer_id = $15 AND s.agent_id IS NOT NULL AND s.assigned_at >= $8::timestamptz
		ORDER BY s.assigned_at DESC LIMIT 1), 0) AS agent_id
), pick AS (
	` + pickAgent + `
	WHERE $25::boolean AND EXISTS (SELECT 1 FROM guard) AND NOT ` + anyWaiting("$1",
	" AND w.priority >= $12::int AND w.capacity_channel = $2 AND (w.retry_at IS NULL OR w.retry_at <= $19)") + `
), t AS (
	INSERT INTO tasks (account_id, queue_id, channel, capacity_channel, state, priority, priority_name, ticket_id,
		customer_id, required_skills, request_skills, attributes, enqueued_at, queue_entered_at, sticky_agent_id, reason,
		closed_at, wait_seconds, updated_at, offered_to, offer_expires_at, offer_count)
	SELECT $1, $9, $10, $2, CASE WHEN pick.agent_id IS NULL THEN $11 ELSE 'offered' END, $12, $13, $14,
		$15, $16, $17, $18, $19, $19, nullif(sticky.agent_id, 0), $21,
		$22, $23, $19, pick.agent_id, CASE WHEN pick.agent_id IS NULL THEN NULL ELSE $26::timestamptz END,
		CASE WHEN pick.agent_id IS NULL THEN 0 ELSE 1 END
	FROM guard CROSS JOIN sticky LEFT JOIN pick ON true
	RETURNING id, offered_to
), agent AS (
	UPDATE agent_presence ap SET %[1]s = ap.%[1]s + 1, last_offer_at = $19
	FROM pick
	WHERE ap.agent_id = pick.agent_id
), ev AS (
	INSERT INTO task_events (account_id, task_id, from_state, to_state, agent_id, queue_id, reason, at)
	SELECT $1, t.id, $24, $11, NULL, $9, $21, $19 FROM t
	UNION ALL
	SELECT $1, t.id, 'queued', 'offered', t.offered_to, $9, '', $19 FROM t WHERE t.offered_to IS NOT NULL
)
SELECT id, coalesce(offered_to, 0) FROM t`

var offerStatements, enqueueStatements = map[string]string{}, map[string]string{}

func init() {
	for _, ch := range []string{"voice", "chat", "email"} {
		where := fmt.Sprintf(matchWhere, roomFor[ch])
		offerStatements[ch] = fmt.Sprintf(offerSQL, loadColumn(ch), where, "$8::bigint")
		enqueueStatements[ch] = fmt.Sprintf(enqueueSQL, loadColumn(ch), where, "(SELECT agent_id FROM sticky)")
	}
}

// roomSQL counts, per capacity channel, the available agents with room for
// one more contact, stopping at the number asked for ($3 voice, $4 chat,
// $5 email; 0 skips the channel). It is a lower bound of the free slots (an
// agent may have several), which is all a batch needs: it never sends more
// plain tasks than could get an agent, and sends the rest on the next pass.
// Stopping early keeps it cheap with thousands of agents signed in.
const roomSQL = `
SELECT
	(SELECT count(*) FROM (SELECT 1 FROM agent_presence p WHERE p.account_id = $1 AND p.state = 'available'
		AND p.load_voice < p.cap_voice AND ($2 OR (p.load_chat = 0 AND p.load_email = 0)) LIMIT $3) v),
	(SELECT count(*) FROM (SELECT 1 FROM agent_presence p WHERE p.account_id = $1 AND p.state = 'available'
		AND p.load_chat < p.cap_chat AND ($2 OR p.load_voice = 0) LIMIT $4) c),
	(SELECT count(*) FROM (SELECT 1 FROM agent_presence p WHERE p.account_id = $1 AND p.state = 'available'
		AND p.load_email < p.cap_email AND ($2 OR p.load_voice = 0) LIMIT $5) e)`

// room returns how many of need's tasks per capacity channel could find an
// agent now. A single task per channel is simply tried: its own search for
// an agent costs what counting would.
func (e *Engine) room(ctx context.Context, tx pgx.Tx, accountID int64, need map[string]int) (map[string]int, error) {
	count := false
	for _, n := range need {
		count = count || n > 1
	}
	if !count {
		return need, nil
	}
	var v, c, m int
	err := tx.QueryRow(ctx, roomSQL, accountID, e.cfg.VoiceAlongside, need["voice"], need["chat"], need["email"]).Scan(&v, &c, &m)
	return map[string]int{"voice": v, "chat": c, "email": m}, err
}

// dispatchBatch claims up to BatchSize waiting tasks, best first, and offers
// each to an agent in one transaction. full reports that the batch was full,
// so more tasks may be waiting.
func (e *Engine) dispatchBatch(ctx context.Context, accountID int64) (offers int, full bool, err error) {
	held := false
	err = e.inTx(ctx, func(tx pgx.Tx) error {
		offers, full, held = 0, false, false
		// The head of the line and the queues' rules come back in one
		// round trip.
		reads := &pgx.Batch{}
		reads.Queue(selectWaiting, accountID, e.cfg.BatchSize, e.now())
		reads.Queue(selectQueueRules, accountID)
		br := tx.SendBatch(ctx, reads)
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		var tasks []waitingTask
		for rows.Next() {
			var t waitingTask
			if err := rows.Scan(&t.id, &t.queueID, &t.channel, &t.capChannel, &t.direction, &t.priority, &t.ticketID,
				&t.customerID, &t.skills, &t.attributes, &t.enqueuedAt, &t.relaxStep, &t.stickyAgent, &t.excluded,
				&t.callback); err != nil {
				rows.Close()
				br.Close()
				return err
			}
			tasks = append(tasks, t)
		}
		if err := rows.Err(); err != nil {
			br.Close()
			return err
		}
		rows, err = br.Query()
		if err != nil {
			br.Close()
			return err
		}
		queues, err := scanQueueRules(rows)
		if err != nil {
			br.Close()
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		full = len(tasks) == e.cfg.BatchSize
		if len(tasks) == 0 {
			return nil
		}
		need := map[string]int{}
		for _, t := range tasks {
			need[t.capChannel]++
		}
		spare, err := e.room(ctx, tx, accountID, need)
		if err != nil {
			return err
		}
		now := e.now()
		batch := &pgx.Batch{}
		var sent []*waitingTask
		for i := range tasks {
			t := &tasks[i]
			q := queues[t.queueID]
			names, levels, team := requirements(t, q)
			// A task anyone may take is sure to find an agent while free
			// slots remain, so the slots cap how many are sent. A task with
			// requirements may find nobody: it is tried while any slot is
			// free and does not hold back the plain tasks behind it.
			plain := len(names) == 0 && team == nil && len(t.excluded) == 0
			if spare[t.capChannel] <= 0 {
				held = held || plain // the next pass, if this one placed some
				continue
			}
			if plain {
				spare[t.capChannel]--
			}
			excluded := t.excluded
			if excluded == nil {
				excluded = []int64{}
			}
			batch.Queue(offerStatements[t.capChannel], accountID, t.capChannel, e.cfg.VoiceAlongside, excluded, team,
				names, levels, t.stickyAgent, t.id, now.Add(e.offerTimeout(t.capChannel, q)), now, t.queueID)
			sent = append(sent, t)
		}
		if len(sent) == 0 {
			return nil
		}
		agents := make([]int64, len(sent))
		br = tx.SendBatch(ctx, batch)
		for i := range sent {
			if err := br.QueryRow().Scan(&agents[i]); err != nil {
				br.Close()
				return fmt.Errorf("offer task %d: %w", sent[i].id, err)
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		for i, t := range sent {
			if agents[i] == 0 {
				if len(t.excluded) > 0 {
					// Nobody took it: if that is because everyone who could
					// has turned it down (not merely because the others are
					// busy), the customer is still waiting, so they will see
					// it again, but after a pause that grows each round, not
					// on every pass.
					others, err := e.othersEligible(ctx, tx, accountID, t, queues[t.queueID])
					if err != nil {
						return err
					}
					if !others {
						if err := e.refused(ctx, tx, accountID, t, now); err != nil {
							return err
						}
					}
				}
				continue
			}
			offers++
			q := queues[t.queueID]
			if err := e.pub.Publish(ctx, tx, Event{AccountID: accountID, Stream: AgentStream(agents[i]), Type: "offer", Data: Offer{
				TaskID: t.id, QueueID: t.queueID, Channel: t.channel, Direction: t.direction, Priority: t.priority,
				TicketID: t.ticketID, CustomerID: t.customerID, Callback: t.callback, Attributes: t.attributes,
				WaitedMS: now.Sub(t.enqueuedAt).Milliseconds(), ExpiresAt: now.Add(e.offerTimeout(t.capChannel, q)),
			}}); err != nil {
				return err
			}
		}
		return nil
	})
	if held && offers > 0 {
		full = true
	}
	return offers, full, err
}

// othersEligibleSQL asks whether an agent who has not turned the task down
// could take it once they have room: signed in and working (available or in
// wrap-up), in the team, with the skills — whatever their load now.
var othersEligibleSQL = `SELECT EXISTS (SELECT 1 FROM agent_presence p JOIN agents a ON a.id = p.agent_id WHERE ` +
	strings.Replace(fmt.Sprintf(matchWhere, `$2::text IS NOT NULL AND $3::boolean IS NOT NULL`),
		"p.state = 'available'", "p.state IN ('available', 'wrap_up')", 1) + `)`

func (e *Engine) othersEligible(ctx context.Context, tx pgx.Tx, accountID int64, t *waitingTask, q queueRules) (bool, error) {
	names, levels, team := requirements(t, q)
	var ok bool
	err := tx.QueryRow(ctx, othersEligibleSQL, accountID, t.capChannel, e.cfg.VoiceAlongside, t.excluded, team, names, levels).Scan(&ok)
	return ok, err
}

// refused starts another round for a task every eligible agent turned
// down: the exclusions are lifted, and the task waits RefusalBackoff (doubled
// each round, at most 8×) before it is offered again. The pause is an event
// of the task, so reports and the supervisor see why it waited.
func (e *Engine) refused(ctx context.Context, tx pgx.Tx, accountID int64, t *waitingTask, now time.Time) error {
	var rounds int
	var retry time.Time
	// refused_rounds on the right is the value before this round.
	if err := tx.QueryRow(ctx, `
UPDATE tasks SET excluded_agents = '{}', refused_rounds = refused_rounds + 1, updated_at = $3,
	retry_at = $3::timestamptz + make_interval(secs => $4::float8 * (2 ^ least(refused_rounds, 3)))
WHERE account_id = $1 AND id = $2 RETURNING refused_rounds, retry_at`,
		accountID, t.id, now, e.cfg.RefusalBackoff.Seconds()).Scan(&rounds, &retry); err != nil {
		return err
	}
	pause := retry.Sub(now)
	return logTransition(ctx, tx, accountID, t.id, StateQueued, StateQueued, 0, t.queueID,
		fmt.Sprintf("refused by every eligible agent (round %d): offered again in %s", rounds, pause), now)
}

const selectQueueRules = `SELECT id, team_id, relaxation, offer_timeout_seconds FROM queues WHERE account_id = $1`

func loadQueueRules(ctx context.Context, tx pgx.Tx, accountID int64) (map[int64]queueRules, error) {
	rows, err := tx.Query(ctx, selectQueueRules, accountID)
	if err != nil {
		return nil, err
	}
	return scanQueueRules(rows)
}

func scanQueueRules(rows pgx.Rows) (map[int64]queueRules, error) {
	defer rows.Close()
	out := map[int64]queueRules{}
	for rows.Next() {
		var id int64
		var q queueRules
		if err := rows.Scan(&id, &q.teamID, &q.relaxation, &q.offerTimeout); err != nil {
			return nil, err
		}
		out[id] = q
	}
	return out, rows.Err()
}

// requirements applies the relaxation steps the task has reached to its
// skills and the queue's team.
func requirements(t *waitingTask, q queueRules) (names []string, levels []int32, team *int64) {
	team = q.teamID
	skills := t.skills
	for i := 0; i < t.relaxStep && i < len(q.relaxation); i++ {
		s := q.relaxation[i]
		if s.DropTeam {
			team = nil
		}
		if s.DropSkills {
			skills = nil
		}
		if s.MaxLevel > 0 {
			capped := map[string]int{}
			for k, v := range skills {
				capped[k] = min(v, s.MaxLevel)
			}
			skills = capped
		}
	}
	for k := range skills {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		levels = append(levels, int32(skills[k]))
	}
	if names == nil {
		names, levels = []string{}, []int32{}
	}
	return names, levels, team
}

// loadColumn names the presence counter of a capacity channel. Only these
// three strings are ever put into SQL.
func loadColumn(capChannel string) string {
	switch capChannel {
	case "voice":
		return "load_voice"
	case "chat":
		return "load_chat"
	}
	return "load_email"
}

func (e *Engine) offerTimeout(capChannel string, q queueRules) time.Duration {
	if q.offerTimeout != nil {
		return time.Duration(*q.offerTimeout) * time.Second
	}
	return e.cfg.OfferTimeout[agentdesk.Channel(capChannel)]
}

// offer reserves capacity on agent for t and tells the agent.
func (e *Engine) offer(ctx context.Context, tx pgx.Tx, accountID int64, t *waitingTask, q queueRules, agent int64) error {
	now := e.now()
	expires := now.Add(e.offerTimeout(t.capChannel, q))
	if _, err := tx.Exec(ctx, `
UPDATE tasks SET state = 'offered', offered_to = $3, offer_expires_at = $4, offer_count = offer_count + 1, updated_at = $5
WHERE account_id = $1 AND id = $2`, accountID, t.id, agent, expires, now); err != nil {
		return err
	}
	col := loadColumn(t.capChannel)
	if _, err := tx.Exec(ctx, `UPDATE agent_presence SET `+col+` = `+col+` + 1, last_offer_at = $2 WHERE agent_id = $1`, agent, now); err != nil {
		return err
	}
	if err := logTransition(ctx, tx, accountID, t.id, StateQueued, StateOffered, agent, t.queueID, "", now); err != nil {
		return err
	}
	return e.pub.Publish(ctx, tx, Event{AccountID: accountID, Stream: AgentStream(agent), Type: "offer", Data: Offer{
		TaskID: t.id, QueueID: t.queueID, Channel: t.channel, Direction: t.direction, Priority: t.priority,
		TicketID: t.ticketID, CustomerID: t.customerID, Callback: t.callback, Attributes: t.attributes,
		WaitedMS: now.Sub(t.enqueuedAt).Milliseconds(), ExpiresAt: expires,
	}})
}
