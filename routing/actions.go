package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Accept turns the agent's offer into an assignment. Like Enqueue, it is a
// single statement of its own, its events published after it, when the
// publisher takes committed events and no AlsoInTx function must join it.
func (e *Engine) Accept(ctx context.Context, accountID, agentID, taskID int64) error {
	if cp, ok := e.singleStatement(ctx); ok {
		var prev int64
		if err := e.retrying(func() (err error) {
			prev, err = e.accept(ctx, e.db, accountID, agentID, taskID)
			return err
		}); err != nil {
			return err
		}
		e.publishCommitted(ctx, cp, taskID, acceptEvents(accountID, agentID, taskID, prev))
		return nil
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		prev, err := e.accept(ctx, tx, accountID, agentID, taskID)
		if err != nil {
			return err
		}
		for _, ev := range acceptEvents(accountID, agentID, taskID, prev) {
			if err := e.pub.Publish(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// accept runs acceptSQL on db and returns the ticket's assignee before
// (0: none, or the agent themself); when nothing was accepted it says why.
func (e *Engine) accept(ctx context.Context, db batcher, accountID, agentID, taskID int64) (int64, error) {
	now := e.now()
	var prev int64
	err := queryRowGeneric(ctx, db, []any{&prev}, acceptSQL, accountID, taskID, agentID, now)
	if errors.Is(err, pgx.ErrNoRows) {
		t, err := scanLockedTask(db.QueryRow(ctx, lockTaskSQL, accountID, taskID), accountID)
		if err != nil {
			return 0, err
		}
		if err := t.offeredToAgent(agentID); err != nil {
			return 0, err
		}
		return 0, agentdesk.Errorf(agentdesk.Conflict, "the offer of task %d has expired", taskID)
	}
	if err != nil {
		return 0, fmt.Errorf("accept task %d: %w", taskID, err)
	}
	if prev == agentID {
		prev = 0
	}
	return prev, nil
}

// acceptEvents tell the agent's desk and the task's followers (the waiting
// customer, and the web's re-check of who may follow the ticket).
func acceptEvents(accountID, agentID, taskID, prev int64) []Event {
	ch := TaskChange{TaskID: taskID, State: StateAssigned, AgentID: agentID, PreviousAssignee: prev}
	return []Event{
		{AccountID: accountID, Stream: AgentStream(agentID), Type: "task_assigned", Data: ch},
		{AccountID: accountID, Stream: TaskStream(taskID), Type: "task_assigned", Data: ch},
	}
}

// acceptSQL assigns task $2 to agent $3 at $4 if it is offered to them and
// the offer has not expired, in one statement: the task, the agent's missed
// offers, the queue's answered count for the day (on the task's shard), the
// event, and the ticket's assignee. It returns the ticket's assignee before
// (0: none or no ticket), for the re-check of who may still follow the
// ticket; no row when nothing was accepted.
const acceptSQL = `
WITH t AS (
	UPDATE tasks SET state = 'assigned', agent_id = $3, assigned_at = $4,
		wait_seconds = trunc(extract(epoch FROM $4::timestamptz - enqueued_at))::int,
		offered_to = NULL, offer_expires_at = NULL, excluded_agents = '{}', updated_at = $4
	WHERE account_id = $1 AND id = $2 AND state = 'offered' AND offered_to = $3
	  AND (offer_expires_at IS NULL OR offer_expires_at >= $4)
	RETURNING queue_id, ticket_id, wait_seconds
), agent AS (
	UPDATE agent_presence SET missed_offers = 0, last_assigned_at = $4
	WHERE agent_id = $3 AND EXISTS (SELECT 1 FROM t)
), counts AS (
	INSERT INTO queue_day_counts AS c (account_id, queue_id, day, shard, answered, within_sl, abandoned)
	SELECT $1, q.id, ($4::timestamptz AT TIME ZONE q.timezone)::date, $2::bigint % 16,
		1, CASE WHEN t.wait_seconds <= q.sl_target_seconds THEN 1 ELSE 0 END, 0
	FROM t JOIN queues q ON q.account_id = $1 AND q.id = t.queue_id
	ON CONFLICT (account_id, queue_id, day, shard) DO UPDATE
	SET answered = c.answered + EXCLUDED.answered, within_sl = c.within_sl + EXCLUDED.within_sl,
		abandoned = c.abandoned + EXCLUDED.abandoned
), ev AS (
	INSERT INTO task_events (account_id, task_id, from_state, to_state, agent_id, queue_id, reason, at)
	SELECT $1, $2, 'offered', 'assigned', $3, t.queue_id, '', $4 FROM t
), old AS (
	SELECT tk.id, tk.assignee_id FROM tickets tk JOIN t ON tk.account_id = $1 AND tk.id = t.ticket_id
	FOR UPDATE OF tk
), ticket AS (
	UPDATE tickets tk SET assignee_id = $3, updated_at = $4 FROM old
	WHERE tk.account_id = $1 AND tk.id = old.id
	RETURNING coalesce(old.assignee_id, 0) AS prev
)
SELECT coalesce((SELECT prev FROM ticket), 0) FROM t`

// lockOffer locks a task whose offer the agent holds: only they may accept
// or reject it.
func lockOffer(ctx context.Context, tx pgx.Tx, accountID, agentID, taskID int64) (*lockedTask, error) {
	t, err := lockTask(ctx, tx, accountID, taskID)
	if err != nil {
		return nil, err
	}
	if err := t.offeredToAgent(agentID); err != nil {
		return nil, err
	}
	return t, nil
}

// offeredToAgent refuses an action on an offer the agent does not hold.
func (t *lockedTask) offeredToAgent(agentID int64) error {
	if t.state != StateOffered || t.offeredTo != agentID {
		return agentdesk.Errorf(agentdesk.Conflict, "task %d is not offered to you (it is %s)", t.id, t.state)
	}
	return nil
}

// Reject hands the offer to the next agent. The rejecting agent is skipped
// for this task while anyone else can take it.
func (e *Engine) Reject(ctx context.Context, accountID, agentID, taskID int64, reason string) error {
	reason = strings.TrimSpace(reason)
	if len(reason) > 200 {
		return agentdesk.FieldError("reason", "must be at most 200 characters")
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		t, err := lockOffer(ctx, tx, accountID, agentID, taskID)
		if err != nil {
			return err
		}
		r := "rejected"
		if reason != "" {
			r += ": " + reason
		}
		return e.requeue(ctx, tx, t, r, false)
	})
}

// EndInteraction ends the conversation or call: the task goes to wrap-up and
// the agent into the wrap_up state until the wrap-up time passes or they
// complete it.
func (e *Engine) EndInteraction(ctx context.Context, accountID, agentID, taskID int64) error {
	return e.inTx(ctx, func(tx pgx.Tx) error {
		t, err := lockTask(ctx, tx, accountID, taskID)
		if err != nil {
			return err
		}
		if t.state != StateAssigned || t.agentID != agentID {
			return agentdesk.Errorf(agentdesk.Conflict, "task %d is not in progress with you (it is %s)", taskID, t.state)
		}
		now := e.now()
		if _, err := tx.Exec(ctx, `UPDATE tasks SET state = 'wrapping', ended_at = $3, updated_at = $3 WHERE account_id = $1 AND id = $2`,
			accountID, taskID, now); err != nil {
			return err
		}
		col := loadColumn(t.capChannel)
		var state PresenceState
		if err := tx.QueryRow(ctx, `UPDATE agent_presence SET `+col+` = `+col+` - 1 WHERE agent_id = $1 RETURNING state`, agentID).Scan(&state); err != nil {
			return err
		}
		wrap, err := e.wrapUpFor(ctx, tx, t.queueID)
		if err != nil {
			return err
		}
		if err := logTransition(ctx, tx, accountID, taskID, StateAssigned, StateWrapping, agentID, t.queueID, "", now); err != nil {
			return err
		}
		if err := e.pub.Publish(ctx, tx, Event{AccountID: accountID, Stream: AgentStream(agentID), Type: "task_state",
			Data: TaskChange{TaskID: taskID, State: StateWrapping, AgentID: agentID}}); err != nil {
			return err
		}
		switch {
		case wrap > 0 && state == Available:
			if err := e.changePresence(ctx, tx, accountID, agentID, state, WrapUp, "", 0, now); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE agent_presence SET wrap_up_until = $2 WHERE agent_id = $1`, agentID, now.Add(wrap))
			return err
		case wrap > 0 && state == WrapUp:
			_, err := tx.Exec(ctx, `UPDATE agent_presence SET wrap_up_until = greatest(wrap_up_until, $2) WHERE agent_id = $1`, agentID, now.Add(wrap))
			return err
		}
		return e.wake(ctx, tx, accountID)
	})
}

func (e *Engine) wrapUpFor(ctx context.Context, tx pgx.Tx, queueID int64) (time.Duration, error) {
	var secs *int
	if err := tx.QueryRow(ctx, `SELECT wrap_up_seconds FROM queues WHERE id = $1`, queueID).Scan(&secs); err != nil {
		return 0, err
	}
	if secs != nil {
		return time.Duration(*secs) * time.Second, nil
	}
	return max(e.cfg.WrapUp, 0), nil
}

// Complete closes the agent's task with its outcome. A contact reason is
// required, and a cancellation reason when the outcome is a cancellation;
// the outcome is also written to the task's ticket. Completing an assigned
// task ends the interaction and the wrap-up at once.
//
// Like Accept, it is a single statement of its own, its event published
// after it, when the publisher takes committed events, no AlsoInTx function
// must join it and the agent is not in wrap-up (ending their last wrap-up
// early changes their presence too, which the transaction does).
func (e *Engine) Complete(ctx context.Context, accountID, agentID, taskID int64, o agentdesk.Outcome) error {
	if o.ContactReasonID == nil {
		return agentdesk.FieldError("outcome.contact_reason_id", "is required to complete a contact")
	}
	if err := o.Validate(agentdesk.StatusSolved); err != nil {
		return err
	}
	if cp, ok := e.singleStatement(ctx); ok {
		var c completion
		if err := e.retrying(func() (err error) {
			c, err = e.complete(ctx, e.db, accountID, agentID, taskID, o, false)
			return err
		}); err != nil {
			return err
		}
		if c.done {
			e.publishCommitted(ctx, cp, taskID, []Event{completedEvent(accountID, agentID, taskID)})
			if c.waiting {
				e.notify(ctx, map[int64]bool{accountID: true})
			}
			return nil
		}
		// Refused, or the agent is in wrap-up: the transaction says why,
		// or does it all.
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		c, err := e.complete(ctx, tx, accountID, agentID, taskID, o, true)
		if err != nil {
			return err
		}
		if !c.done {
			return explainRefusedCompletion(ctx, tx, accountID, agentID, taskID, o)
		}
		if err := e.pub.Publish(ctx, tx, completedEvent(accountID, agentID, taskID)); err != nil {
			return err
		}
		if c.endWrapUp {
			// The last wrap-up done ends the agent's wrap_up state early:
			// confirmed under the agent's lock.
			var state PresenceState
			var open bool
			if err := tx.QueryRow(ctx, `
SELECT p.state, EXISTS (SELECT 1 FROM tasks t WHERE t.account_id = $1 AND t.agent_id = $2 AND t.state = 'wrapping')
FROM agent_presence p WHERE p.agent_id = $2 FOR UPDATE`, accountID, agentID).Scan(&state, &open); err != nil {
				return err
			}
			if state == WrapUp && !open {
				return e.changePresence(ctx, tx, accountID, agentID, WrapUp, Available, "", 0, e.now())
			}
		}
		if !c.waiting {
			return nil
		}
		return e.wake(ctx, tx, accountID)
	})
}

// completion is what completeSQL did.
type completion struct {
	done bool // the task was completed
	// endWrapUp: the agent was in wrap-up with no other task left wrapping.
	endWrapUp bool
	// waiting: the account had tasks waiting, which the freed capacity may
	// serve, so the dispatchers are woken. With none waiting they are not:
	// most completions in a staffed center. A task that starts waiting
	// after the statement read wakes them itself when it commits; if that
	// dispatch runs before this completion commits, it misses the slot
	// freed here, and the task goes to the next agent to free one, or at
	// the next sweep (SweepInterval) at the latest.
	waiting bool
}

// complete runs completeSQL on db. inWrapUp false refuses (done false) when
// the agent is in wrap-up.
func (e *Engine) complete(ctx context.Context, db batcher, accountID, agentID, taskID int64, o agentdesk.Outcome, inWrapUp bool) (completion, error) {
	var c completion
	var presence PresenceState
	var open bool
	err := queryRowGeneric(ctx, db, []any{&presence, &open, &c.waiting}, completeSQL, accountID, taskID, agentID, e.now(),
		o.ContactReasonID, o.CancellationReasonID, o.ResolutionCode, o.RevenueLostCents, o.RetentionOffered, o.RetentionAccepted, inWrapUp)
	if errors.Is(err, pgx.ErrNoRows) {
		return completion{}, nil
	}
	if err != nil {
		return completion{}, translate(fmt.Errorf("complete task %d: %w", taskID, err), "ticket")
	}
	c.done = true
	c.endWrapUp = presence == WrapUp && !open
	return c, nil
}

// explainRefusedCompletion says why completeSQL completed nothing, reading
// what it checked: the task (not found, or not the agent's assigned or
// wrapping task), then the outcome's reasons.
func explainRefusedCompletion(ctx context.Context, tx pgx.Tx, accountID, agentID, taskID int64, o agentdesk.Outcome) error {
	b := &pgx.Batch{}
	b.Queue(lockTaskSQL, accountID, taskID)
	b.Queue(reasonsSQL, accountID, o.ContactReasonID, o.CancellationReasonID)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	t, err := scanLockedTask(br.QueryRow(), accountID)
	if err != nil {
		return err
	}
	var contactKind, cancelKind *string
	if err := br.QueryRow().Scan(&contactKind, &cancelKind); err != nil {
		return err
	}
	if (t.state != StateAssigned && t.state != StateWrapping) || t.agentID != agentID {
		return agentdesk.Errorf(agentdesk.Conflict, "task %d is not yours to complete (it is %s)", taskID, t.state)
	}
	if err := checkReasonKinds(o, contactKind, cancelKind); err != nil {
		return err
	}
	return agentdesk.Errorf(agentdesk.Conflict, "task %d changed while it was being completed; try again", taskID)
}

func completedEvent(accountID, agentID, taskID int64) Event {
	return Event{AccountID: accountID, Stream: AgentStream(agentID), Type: "task_state",
		Data: TaskChange{TaskID: taskID, State: StateCompleted, AgentID: agentID}}
}

// completeSQL completes task $2 of agent $3 at $4 if it is their assigned
// or wrapping task and the outcome's reasons are a contact reason ($5) and,
// if given, a cancellation reason ($6) of the account; unless $11, only
// while the agent is not in wrap-up. In one statement: the task, the
// ticket's outcome ($7 resolution code, $8 revenue lost, $9 and $10 the
// retention offer), the agent's load (an assigned task still holds its
// capacity; a wrapping one gave it back when the interaction ended) and
// the event. It returns the agent's presence, whether another of their
// tasks is still wrapping and whether the account has tasks waiting, as the
// statement found them; no row when nothing was completed.
//
// The task is locked by the subquery that reads its state before the
// update (READ COMMITTED re-reads a row changed meanwhile); the agent's
// presence is read, not locked, as the transaction locks it only to end a
// wrap-up: tasks before agents, the engine's lock order.
var completeSQL = `
WITH old AS (
	SELECT id, state, capacity_channel, queue_id, ticket_id FROM tasks
	WHERE account_id = $1 AND id = $2 AND agent_id = $3 AND state IN ('assigned', 'wrapping')
	  AND (SELECT kind FROM reasons WHERE account_id = $1 AND id = $5) = 'contact'
	  AND ($6::bigint IS NULL OR (SELECT kind FROM reasons WHERE account_id = $1 AND id = $6) = 'cancellation')
	  AND ($11::bool OR (SELECT state FROM agent_presence WHERE agent_id = $3) IS DISTINCT FROM 'wrap_up')
	FOR UPDATE
), t AS (
	UPDATE tasks SET state = 'completed', completed_at = $4, ended_at = coalesce(ended_at, $4), closed_at = $4,
		contact_reason_id = $5, cancellation_reason_id = $6, resolution_code = $7, updated_at = $4
	FROM old WHERE tasks.account_id = $1 AND tasks.id = old.id
	RETURNING old.state AS from_state, old.capacity_channel, old.queue_id, old.ticket_id
), ticket AS (
	UPDATE tickets tk SET contact_reason_id = $5, cancellation_reason_id = $6, resolution_code = $7,
		revenue_lost_cents = $8, retention_offered = $9, retention_accepted = $10, updated_at = $4
	FROM t WHERE tk.account_id = $1 AND tk.id = t.ticket_id
), load AS (
	UPDATE agent_presence SET load_voice = load_voice - (t.capacity_channel = 'voice')::int,
		load_chat = load_chat - (t.capacity_channel = 'chat')::int,
		load_email = load_email - (t.capacity_channel = 'email')::int
	FROM t WHERE agent_id = $3 AND t.from_state = 'assigned'
), ev AS (
	INSERT INTO task_events (account_id, task_id, from_state, to_state, agent_id, queue_id, reason, at)
	SELECT $1, $2, t.from_state, 'completed', $3, t.queue_id, $7, $4 FROM t
)
SELECT coalesce((SELECT state FROM agent_presence WHERE agent_id = $3), 'offline'),
	EXISTS (SELECT 1 FROM tasks w WHERE w.account_id = $1 AND w.agent_id = $3 AND w.state = 'wrapping' AND w.id <> $2),
	` + anyWaiting("$1", "") + `
FROM t`

// reasonsSQL reads the kinds of an outcome's contact and cancellation
// reasons, NULL for a reason not in the account.
const reasonsSQL = `
SELECT (SELECT kind FROM reasons WHERE account_id = $1 AND id = $2),
       (SELECT kind FROM reasons WHERE account_id = $1 AND id = $3)`

// checkReasonKinds checks that the outcome's reasons exist in the account
// and are of the right kind, from what reasonsSQL read.
func checkReasonKinds(o agentdesk.Outcome, contactKind, cancelKind *string) error {
	if contactKind == nil || *contactKind != string(agentdesk.ContactReason) {
		return agentdesk.FieldError("outcome.contact_reason_id", "is not a %s reason", agentdesk.ContactReason)
	}
	if o.CancellationReasonID != nil && (cancelKind == nil || *cancelKind != string(agentdesk.CancellationReason)) {
		return agentdesk.FieldError("outcome.cancellation_reason_id", "is not a %s reason", agentdesk.CancellationReason)
	}
	return nil
}

// MoveTarget is where a supervisor sends a task: another queue, or straight
// to an agent.
type MoveTarget struct {
	QueueID int64 `json:"queue_id,omitempty"`
	AgentID int64 `json:"agent_id,omitempty"`
}

// MoveTask moves a waiting task to another queue (keeping its place by age),
// offers a waiting task directly to an agent, or transfers an assigned task
// to another agent. Capacity is never exceeded: an agent without room
// answers Conflict.
func (e *Engine) MoveTask(ctx context.Context, accountID, taskID int64, to MoveTarget, bySupervisor int64) error {
	if (to.QueueID == 0) == (to.AgentID == 0) {
		return agentdesk.FieldError("queue_id", "give exactly one of queue_id and agent_id")
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		t, err := lockTask(ctx, tx, accountID, taskID)
		if err != nil {
			return err
		}
		by := fmt.Sprintf("by supervisor %d", bySupervisor)
		if to.QueueID != 0 {
			if t.state != StateQueued && t.state != StateOffered {
				return agentdesk.Errorf(agentdesk.Conflict, "only a waiting task can change queue (it is %s)", t.state)
			}
			if t.state == StateOffered {
				if err := e.requeue(ctx, tx, t, "moved "+by, false); err != nil {
					return err
				}
			}
			return e.moveQueue(ctx, tx, t, to.QueueID, fmt.Sprintf("moved from queue %d %s", t.queueID, by))
		}
		switch t.state {
		case StateQueued, StateOffered:
			if t.state == StateOffered {
				if t.offeredTo == to.AgentID {
					return nil
				}
				if err := e.requeue(ctx, tx, t, "moved "+by, false); err != nil {
					return err
				}
			}
			if err := lockAgentWithRoom(ctx, tx, accountID, to.AgentID, t.capChannel); err != nil {
				return err
			}
			w, err := loadWaiting(ctx, tx, accountID, taskID)
			if err != nil {
				return err
			}
			queues, err := loadQueueRules(ctx, tx, accountID)
			if err != nil {
				return err
			}
			return e.offer(ctx, tx, accountID, w, queues[w.queueID], to.AgentID)
		case StateAssigned:
			if t.agentID == to.AgentID {
				return nil
			}
			// Lock both agents in id order so two transfers cannot deadlock.
			first, second := min(t.agentID, to.AgentID), max(t.agentID, to.AgentID)
			if _, err := tx.Exec(ctx, `SELECT 1 FROM agent_presence WHERE agent_id IN ($1, $2) ORDER BY agent_id FOR UPDATE`, first, second); err != nil {
				return err
			}
			if err := lockAgentWithRoom(ctx, tx, accountID, to.AgentID, t.capChannel); err != nil {
				return err
			}
			col := loadColumn(t.capChannel)
			now := e.now()
			if _, err := tx.Exec(ctx, `UPDATE agent_presence SET `+col+` = `+col+` - 1 WHERE agent_id = $1`, t.agentID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE agent_presence SET `+col+` = `+col+` + 1, last_assigned_at = $2 WHERE agent_id = $1`, to.AgentID, now); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE tasks SET agent_id = $3, updated_at = $4 WHERE account_id = $1 AND id = $2`, accountID, taskID, to.AgentID, now); err != nil {
				return err
			}
			if t.ticketID != 0 {
				if _, err := tx.Exec(ctx, `UPDATE tickets SET assignee_id = $3, updated_at = $4 WHERE account_id = $1 AND id = $2`, accountID, t.ticketID, to.AgentID, now); err != nil {
					return err
				}
			}
			if err := logTransition(ctx, tx, accountID, taskID, StateAssigned, StateAssigned, to.AgentID, t.queueID,
				fmt.Sprintf("transferred from agent %d %s", t.agentID, by), now); err != nil {
				return err
			}
			for _, a := range []int64{t.agentID, to.AgentID} {
				if err := e.pub.Publish(ctx, tx, Event{AccountID: accountID, Stream: AgentStream(a), Type: "task_assigned",
					Data: TaskChange{TaskID: taskID, State: StateAssigned, AgentID: to.AgentID, Reason: "transfer"}}); err != nil {
					return err
				}
			}
			return e.wake(ctx, tx, accountID)
		}
		return agentdesk.Errorf(agentdesk.Conflict, "a %s task cannot be moved", t.state)
	})
}

// lockAgentWithRoom locks an agent's presence and checks they are signed in
// and have spare capacity on the channel.
func lockAgentWithRoom(ctx context.Context, tx pgx.Tx, accountID, agentID int64, capChannel string) error {
	var room bool
	var state PresenceState
	err := tx.QueryRow(ctx, `
SELECT p.state, p.`+loadColumn(capChannel)+` < p.cap_`+capChannel+`
FROM agent_presence p
WHERE p.account_id = $1 AND p.agent_id = $2
FOR UPDATE OF p`, accountID, agentID).Scan(&state, &room)
	if err == pgx.ErrNoRows {
		return agentdesk.Errorf(agentdesk.Conflict, "agent %d is offline", agentID)
	}
	if err != nil {
		return err
	}
	if state == Offline {
		return agentdesk.Errorf(agentdesk.Conflict, "agent %d is offline", agentID)
	}
	if !room {
		return agentdesk.Errorf(agentdesk.Conflict, "agent %d has no spare %s capacity", agentID, capChannel)
	}
	return nil
}

func loadWaiting(ctx context.Context, tx pgx.Tx, accountID, taskID int64) (*waitingTask, error) {
	var t waitingTask
	err := tx.QueryRow(ctx, `
SELECT id, queue_id, channel, capacity_channel, direction, priority_name, ticket_id, customer_id,
	required_skills, attributes, enqueued_at, relax_step, coalesce(sticky_agent_id, 0), excluded_agents, callback_number
FROM tasks WHERE account_id = $1 AND id = $2`, accountID, taskID).Scan(&t.id, &t.queueID, &t.channel, &t.capChannel,
		&t.direction, &t.priority, &t.ticketID, &t.customerID, &t.skills, &t.attributes, &t.enqueuedAt, &t.relaxStep,
		&t.stickyAgent, &t.excluded, &t.callback)
	return &t, err
}

// moveQueue puts a queued task into another queue: the new queue's skills
// and relaxation apply from now, the place in line (enqueued_at) is kept.
func (e *Engine) moveQueue(ctx context.Context, tx pgx.Tx, t *lockedTask, queueID int64, reason string) error {
	now := e.now()
	var prio int
	err := tx.QueryRow(ctx, `
UPDATE tasks t SET queue_id = q.id, queue_entered_at = $4, relax_step = 0, updated_at = $4,
	excluded_agents = '{}', retry_at = NULL,
	priority = (t.priority / 100) * 100 + q.priority,
	required_skills = (SELECT coalesce(jsonb_object_agg(k, greatest(
		coalesce((q.required_skills->>k)::int, 0), coalesce((t.request_skills->>k)::int, 0))), '{}')
		FROM (SELECT jsonb_object_keys(q.required_skills) UNION SELECT jsonb_object_keys(t.request_skills)) s(k))
FROM queues q
WHERE t.account_id = $1 AND t.id = $2 AND q.account_id = $1 AND q.id = $3
RETURNING t.priority`, t.accountID, t.id, queueID, now).Scan(&prio)
	if err != nil {
		return translate(err, "queue")
	}
	if err := logTransition(ctx, tx, t.accountID, t.id, StateQueued, StateQueued, 0, queueID, reason, now); err != nil {
		return err
	}
	return e.wake(ctx, tx, t.accountID)
}

// SetPriority changes a task's priority; a waiting task moves in line.
func (e *Engine) SetPriority(ctx context.Context, accountID, taskID int64, p agentdesk.Priority, bySupervisor int64) error {
	if !p.Valid() {
		return agentdesk.FieldError("priority", "must be one of low, normal, high, urgent")
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		t, err := lockTask(ctx, tx, accountID, taskID)
		if err != nil {
			return err
		}
		if t.state.Final() {
			return agentdesk.Errorf(agentdesk.Conflict, "task is %s", t.state)
		}
		now := e.now()
		if _, err := tx.Exec(ctx, `
UPDATE tasks SET priority = $3 * 100 + priority % 100, priority_name = $4, updated_at = $5
WHERE account_id = $1 AND id = $2`, accountID, taskID, p.Rank(), string(p), now); err != nil {
			return err
		}
		if err := logTransition(ctx, tx, accountID, taskID, t.state, t.state, 0, t.queueID,
			fmt.Sprintf("priority %s → %s by supervisor %d", t.priorityName, p, bySupervisor), now); err != nil {
			return err
		}
		return e.wake(ctx, tx, accountID)
	})
}
