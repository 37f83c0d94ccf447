package routing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// State is where a task is in its life.
//
//	queued → offered → assigned → wrapping → completed
//	   ↑        │ reject/timeout
//	   └────────┘
//
// and, from queued or offered: abandoned (the customer left), cancelled (the
// contact went away or was replaced by a callback), overflowed (closed, or
// waited past the maximum with nowhere to go).
type State string

const (
	StateQueued     State = "queued"
	StateOffered    State = "offered"
	StateAssigned   State = "assigned"
	StateWrapping   State = "wrapping"
	StateCompleted  State = "completed"
	StateAbandoned  State = "abandoned"
	StateCancelled  State = "cancelled"
	StateOverflowed State = "overflowed"

	// stateNew is the "from" of a task's first event.
	stateNew State = "new"
)

// Final reports whether no further transition can happen.
func (s State) Final() bool {
	return s == StateCompleted || s == StateAbandoned || s == StateCancelled || s == StateOverflowed
}

// Task is one contact waiting for, offered to, or handled by an agent.
type Task struct {
	ID           int64              `json:"id"`
	QueueID      int64              `json:"queue_id"`
	Channel      agentdesk.Channel  `json:"channel"`
	Direction    string             `json:"direction"`
	State        State              `json:"state"`
	Priority     agentdesk.Priority `json:"priority"`
	TicketID     *int64             `json:"ticket_id"`
	CustomerID   *int64             `json:"customer_id"`
	Skills       map[string]int     `json:"skills"`
	Attributes   map[string]any     `json:"attributes"`
	AgentID      *int64             `json:"agent_id"`
	OfferedTo    *int64             `json:"offered_to"`
	Callback     string             `json:"callback_number,omitempty"`
	Reason       string             `json:"reason,omitempty"`
	ParentTaskID *int64             `json:"parent_task_id,omitempty"`
	// RefusedRounds counts the times every eligible agent turned the task
	// down; until RetryAt it is not offered again.
	RefusedRounds int       `json:"refused_rounds"`
	Times         TaskTimes `json:"times"`
}

// TaskTimes are the task's timestamps; reports derive wait and handle times.
type TaskTimes struct {
	EnqueuedAt     time.Time  `json:"enqueued_at"`
	OfferExpiresAt *time.Time `json:"offer_expires_at"`
	AssignedAt     *time.Time `json:"assigned_at"`
	EndedAt        *time.Time `json:"ended_at"`
	CompletedAt    *time.Time `json:"completed_at"`
	ClosedAt       *time.Time `json:"closed_at"`
	WaitSeconds    *int       `json:"wait_seconds"`
	RetryAt        *time.Time `json:"retry_at,omitempty"`
}

const taskColumns = `id, queue_id, channel, direction, state, priority_name, ticket_id, customer_id,
	required_skills, attributes, agent_id, offered_to, callback_number, reason, parent_task_id,
	enqueued_at, offer_expires_at, assigned_at, ended_at, completed_at, closed_at, wait_seconds, refused_rounds, retry_at`

func scanTask(row pgx.Row) (*Task, error) {
	var t Task
	err := row.Scan(&t.ID, &t.QueueID, &t.Channel, &t.Direction, &t.State, &t.Priority, &t.TicketID, &t.CustomerID,
		&t.Skills, &t.Attributes, &t.AgentID, &t.OfferedTo, &t.Callback, &t.Reason, &t.ParentTaskID,
		&t.Times.EnqueuedAt, &t.Times.OfferExpiresAt, &t.Times.AssignedAt, &t.Times.EndedAt,
		&t.Times.CompletedAt, &t.Times.ClosedAt, &t.Times.WaitSeconds, &t.RefusedRounds, &t.Times.RetryAt)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Task returns one task.
func (e *Engine) Task(ctx context.Context, accountID, taskID int64) (*Task, error) {
	t, err := scanTask(e.db.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE account_id = $1 AND id = $2`, accountID, taskID))
	if err != nil {
		return nil, translate(err, "task")
	}
	return t, nil
}

// validateRequest checks and normalises what a channel adapter asks for.
func validateRequest(req *agentdesk.TaskRequest) error {
	if req.AccountID <= 0 {
		return agentdesk.FieldError("account_id", "is required")
	}
	if !req.Channel.Valid() {
		return agentdesk.FieldError("channel", "unknown channel %q", req.Channel)
	}
	if req.Priority == "" {
		req.Priority = agentdesk.PriorityNormal
	}
	if !req.Priority.Valid() {
		return agentdesk.FieldError("priority", "must be one of low, normal, high, urgent")
	}
	if req.Skills == nil {
		req.Skills = map[string]int{}
	}
	if req.Attributes == nil {
		req.Attributes = map[string]any{}
	}
	return validSkills("skills", req.Skills)
}

// Enqueue queues a task in its own transaction.
func (e *Engine) Enqueue(ctx context.Context, req agentdesk.TaskRequest) (int64, error) {
	var id int64
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = e.EnqueueTx(ctx, tx, req)
		return err
	})
	return id, err
}

// EnqueueTx queues a task inside the caller's transaction, so the contact and
// its routing task commit together. The dispatcher is woken when tx commits.
func (e *Engine) EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error) {
	if err := validateRequest(&req); err != nil {
		return 0, err
	}
	now := e.now()
	q, sticky, err := e.enqueueLookups(ctx, tx, &req, now)
	if err != nil {
		return 0, err
	}
	qid := q.ID
	if !q.accepts(req.Channel) {
		return 0, agentdesk.FieldError("queue_id", "queue %q does not take %s contacts", q.Name, req.Channel)
	}
	state, reason := StateQueued, ""
	if !q.Hours.OpenAt(now) {
		reason = "closed"
		switch q.ClosedAction {
		case ClosedOverflow:
			to, err := scanQueue(tx.QueryRow(ctx, `SELECT `+queueColumns+` FROM queues WHERE account_id = $1 AND id = $2`, req.AccountID, *q.Overflow.QueueID))
			if err != nil {
				return 0, translate(err, "overflow queue")
			}
			q, reason = to, fmt.Sprintf("closed: overflow from queue %d", qid)
		case ClosedMessage:
			state = StateOverflowed
		}
	}
	skills := map[string]int{}
	for k, v := range q.RequiredSkills {
		skills[k] = v
	}
	for k, v := range req.Skills {
		skills[k] = max(skills[k], v)
	}
	var closedAt *time.Time
	var wait *int
	if state.Final() {
		closedAt, wait = &now, new(int)
	}
	// A task arriving while nobody waits ahead of it on its channel is
	// offered in its own transaction when an agent is free: the task, its
	// reservation and both events commit together, so the offer costs no
	// second durable transaction and no dispatcher wake-up. Otherwise it
	// queues and the dispatcher keeps the line's order.
	try := !state.Final() && reason == ""
	teamID := q.TeamID
	names, levels, _ := requirements(&waitingTask{skills: skills}, queueRules{teamID: teamID})
	offerFor := e.offerTimeout(string(req.Channel.CapacityChannel()), queueRules{offerTimeout: q.Timeouts.OfferSeconds})
	var stickyID int64
	if sticky != nil {
		stickyID = *sticky
	}
	var id, agent int64
	err = tx.QueryRow(ctx, enqueueStatements[string(req.Channel.CapacityChannel())],
		req.AccountID, string(req.Channel.CapacityChannel()), e.cfg.VoiceAlongside, []int64{}, teamID, names, levels, stickyID,
		q.ID, string(req.Channel), string(state), req.Priority.Rank()*100+q.Priority, string(req.Priority),
		nullID(req.TicketID), nullID(req.CustomerID), skills, req.Skills, req.Attributes, now, sticky, reason, closedAt, wait,
		string(stateNew), try, now.Add(offerFor)).Scan(&id, &agent)
	if err != nil {
		return 0, translate(err, "task")
	}
	if state.Final() {
		return id, e.pub.Publish(ctx, tx, Event{AccountID: req.AccountID, Stream: TaskStream(id), Type: "task_state",
			Data: TaskChange{TaskID: id, State: state, Reason: reason}})
	}
	if reason == "closed" && q.ClosedAction == ClosedCallback {
		if err := e.pub.Publish(ctx, tx, Event{AccountID: req.AccountID, Stream: TaskStream(id), Type: "task_state",
			Data: TaskChange{TaskID: id, State: state, Reason: "closed: callback offered"}}); err != nil {
			return 0, err
		}
	}
	if agent != 0 {
		return id, e.pub.Publish(ctx, tx, Event{AccountID: req.AccountID, Stream: AgentStream(agent), Type: "offer", Data: Offer{
			TaskID: id, QueueID: q.ID, Channel: string(req.Channel), Direction: "inbound", Priority: string(req.Priority),
			TicketID: nullID(req.TicketID), CustomerID: nullID(req.CustomerID), Attributes: req.Attributes,
			ExpiresAt: now.Add(offerFor),
		}})
	}
	// The customer learns their position from the next periodic publication
	// (PublishStats); counting the line here would make every enqueue cost
	// as much as the queue is long.
	return id, e.wake(ctx, tx, req.AccountID)
}

// enqueueLookups reads, in one round trip, the queue a new task goes to
// (the one asked for, else the channel's default queue) and the customer's
// sticky agent. Only an account's very first contact on a channel, before
// any default queue exists, costs more: the default queue is created.
func (e *Engine) enqueueLookups(ctx context.Context, tx pgx.Tx, req *agentdesk.TaskRequest, now time.Time) (*Queue, *int64, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+queueColumns+` FROM queues
WHERE account_id = $1 AND id = CASE WHEN $2::bigint <> 0 THEN $2::bigint ELSE (
	SELECT queue_id FROM queue_defaults WHERE account_id = $1 AND channel = ANY($3)
	ORDER BY channel = $4 DESC LIMIT 1) END`,
		req.AccountID, req.QueueID, []string{string(req.Channel), string(req.Channel.CapacityChannel())}, string(req.Channel))
	wantSticky := req.CustomerID != 0 && e.cfg.StickyWindow > 0
	if wantSticky {
		b.Queue(`
SELECT agent_id FROM tasks
WHERE account_id = $1 AND customer_id = $2 AND agent_id IS NOT NULL AND assigned_at >= $3
ORDER BY assigned_at DESC LIMIT 1`, req.AccountID, req.CustomerID, now.Add(-e.cfg.StickyWindow))
	}
	br := tx.SendBatch(ctx, b)
	q, qerr := scanQueue(br.QueryRow())
	var sticky *int64
	if wantSticky {
		var a int64
		if err := br.QueryRow().Scan(&a); err == nil {
			sticky = &a
		} else if !errors.Is(err, pgx.ErrNoRows) {
			br.Close()
			return nil, nil, fmt.Errorf("sticky agent: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, nil, err
	}
	if errors.Is(qerr, pgx.ErrNoRows) && req.QueueID == 0 {
		qid, err := defaultQueue(ctx, tx, req.AccountID, req.Channel)
		if err != nil {
			return nil, nil, err
		}
		q, qerr = scanQueue(tx.QueryRow(ctx, `SELECT `+queueColumns+` FROM queues WHERE account_id = $1 AND id = $2`, req.AccountID, qid))
	}
	if qerr != nil {
		return nil, nil, translate(qerr, "queue")
	}
	return q, sticky, nil
}

// wake asks every engine's dispatcher to look at the account once tx
// commits. It only speeds things up: dispatchers pass over every account
// periodically anyway.
//
// Nothing is sent inside the transaction: PostgreSQL holds a cluster-wide
// lock from a notifying transaction's pre-commit until its commit record is
// flushed, which would serialise every writing transaction that notifies.
// The engine's own transactions and a caller's run by postgres.InTx wake
// after their commit; only a caller's transaction begun some other way
// still carries the NOTIFY (payload: the account, no sender, so every
// engine including this one acts on it).
func (e *Engine) wake(ctx context.Context, tx pgx.Tx, accountID int64) error {
	e.mu.Lock()
	set, ours := e.pending[tx]
	if ours {
		set[accountID] = true
	}
	e.mu.Unlock()
	if ours {
		return nil
	}
	if postgres.AfterCommit(tx, func() { e.notify(ctx, map[int64]bool{accountID: true}) }) {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify('agentdesk_routing', $1)`, strconv.FormatInt(accountID, 10))
	return err
}

// lockTask locks a task row for a transition.
func lockTask(ctx context.Context, tx pgx.Tx, accountID, taskID int64) (*lockedTask, error) {
	var t lockedTask
	err := tx.QueryRow(ctx, `
SELECT id, queue_id, state, capacity_channel, coalesce(offered_to, 0), coalesce(agent_id, 0), enqueued_at,
	priority, priority_name, coalesce(ticket_id, 0), coalesce(customer_id, 0), offer_expires_at
FROM tasks WHERE account_id = $1 AND id = $2 FOR UPDATE`, accountID, taskID).Scan(
		&t.id, &t.queueID, &t.state, &t.capChannel, &t.offeredTo, &t.agentID, &t.enqueuedAt,
		&t.priority, &t.priorityName, &t.ticketID, &t.customerID, &t.offerExpires)
	if err != nil {
		return nil, translate(err, "task")
	}
	t.accountID = accountID
	return &t, nil
}

type lockedTask struct {
	accountID, id, queueID int64
	state                  State
	capChannel             string
	offeredTo, agentID     int64
	enqueuedAt             time.Time
	priority               int
	priorityName           string
	ticketID, customerID   int64
	offerExpires           *time.Time
}

// Abandon records that the customer left before an agent took the contact.
func (e *Engine) Abandon(ctx context.Context, accountID, taskID int64, reason string) error {
	if reason = strings.TrimSpace(reason); reason == "" {
		reason = "customer left"
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		return e.endWaiting(ctx, tx, accountID, taskID, StateAbandoned, reason)
	})
}

// Cancel ends a task that no longer needs an agent (the contact was handled
// elsewhere). Assigned tasks are completed by their agent instead.
func (e *Engine) Cancel(ctx context.Context, accountID, taskID int64, reason string) error {
	if reason = strings.TrimSpace(reason); reason == "" {
		reason = "cancelled"
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		return e.endWaiting(ctx, tx, accountID, taskID, StateCancelled, reason)
	})
}

// endWaiting moves a queued or offered task to a final state, releasing an
// offer's reservation.
func (e *Engine) endWaiting(ctx context.Context, tx pgx.Tx, accountID, taskID int64, to State, reason string) error {
	t, err := lockTask(ctx, tx, accountID, taskID)
	if err != nil {
		return err
	}
	if t.state != StateQueued && t.state != StateOffered {
		return agentdesk.Errorf(agentdesk.Conflict, "task is %s; only a waiting task can be %s", t.state, to)
	}
	now := e.now()
	if t.state == StateOffered {
		if err := e.releaseOffer(ctx, tx, t, "task "+string(to), false); err != nil {
			return err
		}
	}
	wait := int(now.Sub(t.enqueuedAt) / time.Second)
	if _, err := tx.Exec(ctx, `
UPDATE tasks SET state = $3, reason = $4, closed_at = $5, wait_seconds = $6, offered_to = NULL,
	offer_expires_at = NULL, updated_at = $5
WHERE account_id = $1 AND id = $2`, accountID, taskID, string(to), reason, now, wait); err != nil {
		return err
	}
	if err := logTransition(ctx, tx, accountID, taskID, t.state, to, t.offeredTo, t.queueID, reason, now); err != nil {
		return err
	}
	if to == StateAbandoned {
		if _, err := tx.Exec(ctx, countSQL, accountID, t.queueID, now, taskID, 0, wait, 1); err != nil {
			return fmt.Errorf("count abandoned: %w", err)
		}
	}
	return e.pub.Publish(ctx, tx, Event{AccountID: accountID, Stream: TaskStream(taskID), Type: "task_state",
		Data: TaskChange{TaskID: taskID, State: to, Reason: reason}})
}

// RequestCallback replaces a waiting contact by an outbound call to number.
// The call task takes over the contact's place in line (same priority and
// enqueue time), so it is offered when the contact would have reached the
// head; the customer need not stay connected.
func (e *Engine) RequestCallback(ctx context.Context, accountID, taskID int64, number string) (int64, error) {
	number = strings.TrimSpace(number)
	if len(number) < 3 || len(number) > 32 || strings.Trim(number, "+0123456789 -()") != "" {
		return 0, agentdesk.FieldError("number", "must be a phone number")
	}
	var id int64
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		t, err := lockTask(ctx, tx, accountID, taskID)
		if err != nil {
			return err
		}
		if err := e.endWaiting(ctx, tx, accountID, taskID, StateCancelled, "callback requested"); err != nil {
			return err
		}
		now := e.now()
		err = tx.QueryRow(ctx, `
INSERT INTO tasks (account_id, queue_id, channel, capacity_channel, direction, state, priority, priority_name,
	ticket_id, customer_id, required_skills, request_skills, attributes, enqueued_at, queue_entered_at, relax_step, sticky_agent_id,
	callback_number, parent_task_id, updated_at)
SELECT account_id, queue_id, 'voice', 'voice', 'outbound', 'queued', priority, priority_name, ticket_id,
	customer_id, required_skills, request_skills, attributes, enqueued_at, queue_entered_at, relax_step, sticky_agent_id,
	$3, id, $4
FROM tasks WHERE account_id = $1 AND id = $2
RETURNING id`, accountID, taskID, number, now).Scan(&id)
		if err != nil {
			return err
		}
		if err := logTransition(ctx, tx, accountID, id, stateNew, StateQueued, 0, t.queueID, fmt.Sprintf("callback for task %d", taskID), now); err != nil {
			return err
		}
		return e.wake(ctx, tx, accountID)
	})
	return id, err
}
