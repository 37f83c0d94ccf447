package routing

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Dispatch offers waiting tasks to agents until nothing more can be matched,
// and returns how many offers it made. Safe to call from several engines at
// once: tasks are claimed with FOR UPDATE SKIP LOCKED and agents likewise, so
// two engines never touch the same task or agent row at the same time.
func (e *Engine) Dispatch(ctx context.Context) (int, error) {
	rows, err := e.db.Query(ctx, `
SELECT a.id FROM accounts a
WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.account_id = a.id AND t.state = 'queued')`)
	if err != nil {
		return 0, err
	}
	accounts, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
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
WHERE account_id = $1 AND state = 'queued'
ORDER BY priority DESC, enqueued_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// matchAgent finds the agent idle longest who may take a task, and locks the
// agent's presence row. SKIP LOCKED: an agent another transaction is offering
// to right now is simply not a candidate for this one; after the lock is
// taken PostgreSQL re-checks the row, so the capacity test sees the latest
// committed load.
const matchAgent = `
SELECT p.agent_id
FROM agent_presence p JOIN agents a ON a.id = p.agent_id
WHERE p.account_id = $1 AND p.state = 'available' AND a.active
  AND CASE $2::text
        WHEN 'voice' THEN p.load_voice < coalesce((a.capacity->>'voice')::int, 1)
                          AND ($3 OR (p.load_chat = 0 AND p.load_email = 0))
        WHEN 'chat'  THEN p.load_chat < coalesce((a.capacity->>'chat')::int, 3) AND ($3 OR p.load_voice = 0)
        ELSE              p.load_email < coalesce((a.capacity->>'email')::int, 5) AND ($3 OR p.load_voice = 0)
      END
  AND p.agent_id <> ALL($4::bigint[])
  AND ($5::bigint IS NULL OR EXISTS (
        SELECT 1 FROM team_members tm WHERE tm.team_id = $5 AND tm.agent_id = p.agent_id))
  AND NOT EXISTS (
        SELECT 1 FROM unnest($6::text[], $7::int[]) r(name, lvl)
        WHERE NOT EXISTS (
          SELECT 1 FROM agent_skills s JOIN skills k ON k.id = s.skill_id
          WHERE s.agent_id = p.agent_id AND k.account_id = $1 AND k.name = r.name AND s.level >= r.lvl))
  AND ($8::bigint = 0 OR p.agent_id = $8)
ORDER BY p.last_offer_at NULLS FIRST, p.agent_id
LIMIT 1
FOR UPDATE OF p SKIP LOCKED`

// dispatchBatch claims up to BatchSize waiting tasks, best first, and offers
// each to an agent in one transaction. full reports that the batch was full,
// so more tasks may be waiting.
func (e *Engine) dispatchBatch(ctx context.Context, accountID int64) (offers int, full bool, err error) {
	err = e.inTx(ctx, func(tx pgx.Tx) error {
		offers, full = 0, false
		rows, err := tx.Query(ctx, selectWaiting, accountID, e.cfg.BatchSize)
		if err != nil {
			return err
		}
		var tasks []waitingTask
		for rows.Next() {
			var t waitingTask
			if err := rows.Scan(&t.id, &t.queueID, &t.channel, &t.capChannel, &t.direction, &t.priority, &t.ticketID,
				&t.customerID, &t.skills, &t.attributes, &t.enqueuedAt, &t.relaxStep, &t.stickyAgent, &t.excluded,
				&t.callback); err != nil {
				rows.Close()
				return err
			}
			tasks = append(tasks, t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		full = len(tasks) == e.cfg.BatchSize
		if len(tasks) == 0 {
			return nil
		}
		queues, err := loadQueueRules(ctx, tx, accountID)
		if err != nil {
			return err
		}
		// nobody remembers requirement sets no agent can take right now, so
		// a long line of similar tasks costs one failed search, not one each.
		nobody := map[string]bool{}
		for i := range tasks {
			t := &tasks[i]
			q := queues[t.queueID]
			names, levels, team := requirements(t, q)
			key := fmt.Sprint(t.capChannel, team, names, levels)
			var agent int64
			if t.stickyAgent != 0 {
				agent, err = e.match(ctx, tx, accountID, t, team, names, levels, t.excluded, t.stickyAgent)
				if err != nil {
					return err
				}
			}
			if agent == 0 && !nobody[key] {
				agent, err = e.match(ctx, tx, accountID, t, team, names, levels, t.excluded, 0)
				if err != nil {
					return err
				}
				if agent == 0 && len(t.excluded) > 0 {
					// Everyone eligible has turned it down: let them see it again
					// on the next pass rather than leave the customer waiting.
					if _, err := tx.Exec(ctx, `UPDATE tasks SET excluded_agents = '{}' WHERE id = $1`, t.id); err != nil {
						return err
					}
				} else if agent == 0 {
					nobody[key] = true
				}
			}
			if agent == 0 {
				continue
			}
			if err := e.offer(ctx, tx, accountID, t, q, agent); err != nil {
				return err
			}
			offers++
		}
		return nil
	})
	return offers, full, err
}

func loadQueueRules(ctx context.Context, tx pgx.Tx, accountID int64) (map[int64]queueRules, error) {
	rows, err := tx.Query(ctx, `SELECT id, team_id, relaxation, offer_timeout_seconds FROM queues WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, err
	}
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

func (e *Engine) match(ctx context.Context, tx pgx.Tx, accountID int64, t *waitingTask, team *int64, names []string, levels []int32, excluded []int64, only int64) (int64, error) {
	var agent int64
	if excluded == nil {
		excluded = []int64{}
	}
	err := tx.QueryRow(ctx, matchAgent, accountID, t.capChannel, e.cfg.VoiceAlongside, excluded, team, names, levels, only).Scan(&agent)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return agent, err
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
