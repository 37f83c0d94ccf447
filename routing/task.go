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

// Enqueue queues a task in its own transaction. When the engine's
// publisher takes events after the commit (CommittedPublisher) and no
// AlsoInTx function must join the change, the task is inserted, and offered
// when an agent is free, by one statement that is its own transaction: one
// round trip to the database. Otherwise the task and its events commit in one
// transaction, as with EnqueueTx.
func (e *Engine) Enqueue(ctx context.Context, req agentdesk.TaskRequest) (int64, error) {
	if cp, ok := e.singleStatement(ctx); ok {
		return e.enqueueDirect(ctx, cp, req)
	}
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
	res, err := e.insertTask(ctx, tx, req)
	if err != nil {
		return 0, err
	}
	for _, ev := range res.events() {
		if err := e.pub.Publish(ctx, tx, ev); err != nil {
			return 0, err
		}
	}
	if res.waits() {
		return res.id, e.wake(ctx, tx, res.req.AccountID)
	}
	return res.id, nil
}

// enqueueDirect is Enqueue's single statement. The statement is atomic on
// its own, so the task, its reservation and its events are stored together
// exactly as in a transaction; its events go out once it has returned.
func (e *Engine) enqueueDirect(ctx context.Context, cp CommittedPublisher, req agentdesk.TaskRequest) (int64, error) {
	var res *enqueued
	if err := e.retrying(func() (err error) {
		res, err = e.insertTask(ctx, e.db, req)
		return err
	}); err != nil {
		return 0, err
	}
	e.publishCommitted(ctx, cp, res.id, res.events())
	if res.waits() {
		e.notify(ctx, map[int64]bool{res.req.AccountID: true})
	}
	return res.id, nil
}

// enqueued is what the enqueue statement did: the task, the agent it was
// offered to on arrival (0: none), and what its events need.
type enqueued struct {
	id, agent int64
	req       agentdesk.TaskRequest
	q         *Queue
	state     State
	reason    string
	expires   time.Time
}

// events are what the enqueue tells: the end of a task that cannot wait (a
// closed queue with a message), the callback offered by a closed queue, or
// the offer made on arrival.
func (r *enqueued) events() []Event {
	acct := r.req.AccountID
	if r.state.Final() {
		return []Event{{AccountID: acct, Stream: TaskStream(r.id), Type: "task_state",
			Data: TaskChange{TaskID: r.id, State: r.state, Reason: r.reason}}}
	}
	var out []Event
	if r.reason == "closed" && r.q.ClosedAction == ClosedCallback {
		out = append(out, Event{AccountID: acct, Stream: TaskStream(r.id), Type: "task_state",
			Data: TaskChange{TaskID: r.id, State: r.state, Reason: "closed: callback offered"}})
	}
	if r.agent != 0 {
		out = append(out, Event{AccountID: acct, Stream: AgentStream(r.agent), Type: "offer", Data: Offer{
			TaskID: r.id, QueueID: r.q.ID, Channel: string(r.req.Channel), Direction: "inbound", Priority: string(r.req.Priority),
			TicketID: nullID(r.req.TicketID), CustomerID: nullID(r.req.CustomerID), Attributes: r.req.Attributes,
			ExpiresAt: r.expires,
		}})
	}
	return out
}

// waits says the task is in the line for the dispatcher. The customer
// learns their position from the next periodic publication (PublishStats);
// counting the line here would make every enqueue cost as much as the queue
// is long.
func (r *enqueued) waits() bool { return !r.state.Final() && r.agent == 0 }

// insertTask validates the request and runs the enqueue statement on db,
// with the engine's copy of the queue; a copy the statement finds out of date
// is read again.
func (e *Engine) insertTask(ctx context.Context, db batcher, req agentdesk.TaskRequest) (*enqueued, error) {
	if err := validateRequest(&req); err != nil {
		return nil, err
	}
	now := e.now()
	key := keyFor(&req)
	for attempt := 0; ; attempt++ {
		c, cached := e.queues.get(key)
		if !cached {
			var err error
			if c, err = loadQueue(ctx, db, &req); err != nil {
				return nil, err
			}
			e.queues.put(key, c)
		}
		if !c.q.accepts(req.Channel) {
			if cached {
				// A refusal is made from the queue as it is, not a copy.
				e.queues.drop(key)
				continue
			}
			return nil, agentdesk.FieldError("queue_id", "queue %q does not take %s contacts", c.q.Name, req.Channel)
		}
		res, err := e.insertTaskWith(ctx, db, req, c, now)
		if !errors.Is(err, errQueueChanged) {
			return res, err
		}
		e.queues.drop(key)
		if attempt == 3 {
			return nil, agentdesk.Errorf(agentdesk.Conflict, "queue %d kept changing while the task was queued; try again", c.q.ID)
		}
	}
}

// insertTaskWith runs the enqueue statement for queue c, as it was read.
func (e *Engine) insertTaskWith(ctx context.Context, db batcher, req agentdesk.TaskRequest, c cachedQueue, now time.Time) (*enqueued, error) {
	q := c.q
	state, reason := StateQueued, ""
	if !q.Hours.OpenAt(now) {
		reason = "closed"
		switch q.ClosedAction {
		case ClosedOverflow:
			to, err := scanQueue(db.QueryRow(ctx, `SELECT `+queueColumns+` FROM queues WHERE account_id = $1 AND id = $2`, req.AccountID, *q.Overflow.QueueID))
			if err != nil {
				return nil, translate(err, "overflow queue")
			}
			q, reason = to, fmt.Sprintf("closed: overflow from queue %d", c.q.ID)
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
	// offered by the statement that inserts it when an agent is free: the
	// task, its reservation and both events are stored together, so the
	// offer costs no second durable transaction and no dispatcher wake-up.
	// Otherwise it queues and the dispatcher keeps the line's order.
	try := !state.Final() && reason == ""
	names, levels, _ := requirements(&waitingTask{skills: skills}, queueRules{teamID: q.TeamID})
	capCh := string(req.Channel.CapacityChannel())
	offerFor := e.offerTimeout(capCh, queueRules{offerTimeout: q.Timeouts.OfferSeconds})
	var stickySince *time.Time
	if req.CustomerID != 0 && e.cfg.StickyWindow > 0 {
		since := now.Add(-e.cfg.StickyWindow)
		stickySince = &since
	}
	var defaults []string
	if req.QueueID == 0 {
		defaults = defaultChannels(req.Channel)
	}
	res := &enqueued{req: req, q: q, state: state, reason: reason, expires: now.Add(offerFor)}
	err := queryRowGeneric(ctx, db, []any{&res.id, &res.agent}, enqueueStatements[capCh],
		req.AccountID, capCh, e.cfg.VoiceAlongside, []int64{}, q.TeamID, names, levels, stickySince,
		q.ID, string(req.Channel), string(state), req.Priority.Rank()*100+q.Priority, string(req.Priority),
		nullID(req.TicketID), nullID(req.CustomerID), skills, req.Skills, req.Attributes, now, c.q.ID, reason, closedAt, wait,
		string(stateNew), try, res.expires, c.version, defaults)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errQueueChanged
	}
	if err != nil {
		return nil, translate(err, "task")
	}
	return res, nil
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
	return scanLockedTask(tx.QueryRow(ctx, lockTaskSQL, accountID, taskID), accountID)
}

const lockTaskSQL = `
SELECT id, queue_id, state, capacity_channel, coalesce(offered_to, 0), coalesce(agent_id, 0), enqueued_at,
	priority, priority_name, coalesce(ticket_id, 0), coalesce(customer_id, 0), offer_expires_at
FROM tasks WHERE account_id = $1 AND id = $2 FOR UPDATE`

func scanLockedTask(row pgx.Row, accountID int64) (*lockedTask, error) {
	var t lockedTask
	err := row.Scan(
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
