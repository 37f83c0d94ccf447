package routing

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event is something a connected client should learn about: an offer for an
// agent, queue stats for supervisors, a queue position for a waiting customer.
type Event struct {
	AccountID int64
	// Stream names who receives it: "agent:42", "supervisor:7" (account 7),
	// "task:99" (the customer waiting on task 99).
	Stream string
	// Type is "offer", "offer_revoked", "task_assigned", "task_state",
	// "queue_stats", "queue_position", "presence".
	Type string
	Data any
}

// Publisher delivers events. Publish is called inside the transaction that
// makes the change the event describes, so an implementation that writes the
// event to a table in tx delivers it exactly when the change commits.
type Publisher interface {
	Publish(ctx context.Context, tx pgx.Tx, e Event) error
}

// CommittedPublisher is a Publisher that can also deliver an event after the
// change it describes has committed, outside any transaction. Given one,
// Enqueue needs no transaction of its own: it inserts (and offers) a task
// with a single statement and publishes once that has returned. A publisher
// that must store its events with the change (the hub's event table) does
// not implement it.
type CommittedPublisher interface {
	Publisher
	PublishCommitted(ctx context.Context, e Event) error
}

// AgentStream, SupervisorStream and TaskStream name event streams.
func AgentStream(agentID int64) string { return "agent:" + strconv.FormatInt(agentID, 10) }
func SupervisorStream(accountID int64) string {
	return "supervisor:" + strconv.FormatInt(accountID, 10)
}
func TaskStream(taskID int64) string { return "task:" + strconv.FormatInt(taskID, 10) }

// Offer is what an agent is shown: accept it before ExpiresAt or it goes to
// the next agent.
type Offer struct {
	TaskID     int64          `json:"task_id"`
	QueueID    int64          `json:"queue_id"`
	Channel    string         `json:"channel"`
	Direction  string         `json:"direction"`
	Priority   string         `json:"priority"`
	TicketID   *int64         `json:"ticket_id"`
	CustomerID *int64         `json:"customer_id"`
	Callback   string         `json:"callback_number,omitempty"`
	Attributes map[string]any `json:"attributes"`
	WaitedMS   int64          `json:"waited_ms"`
	ExpiresAt  time.Time      `json:"expires_at"`
}

// TaskChange is the data of "offer_revoked", "task_assigned" and "task_state".
type TaskChange struct {
	TaskID  int64  `json:"task_id"`
	State   State  `json:"state"`
	AgentID int64  `json:"agent_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// PreviousAssignee is the agent the task's ticket was assigned to
	// before an accepted offer gave it to AgentID (0: nobody, or the same
	// agent): they may no longer see it.
	PreviousAssignee int64 `json:"previous_assignee_id,omitempty"`
}

// TaskEvent is one row of a task's history.
type TaskEvent struct {
	ID      int64     `json:"id"`
	TaskID  int64     `json:"task_id"`
	From    State     `json:"from"`
	To      State     `json:"to"`
	AgentID *int64    `json:"agent_id"`
	QueueID *int64    `json:"queue_id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

const insertTaskEvent = `
INSERT INTO task_events (account_id, task_id, from_state, to_state, agent_id, queue_id, reason, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// logTransition records one task transition; every state change calls it in
// the same transaction.
func logTransition(ctx context.Context, tx pgx.Tx, accountID, taskID int64, from, to State, agentID, queueID int64, reason string, at time.Time) error {
	_, err := tx.Exec(ctx, insertTaskEvent, accountID, taskID, string(from), string(to), nullID(agentID), nullID(queueID), reason, at)
	if err != nil {
		return fmt.Errorf("task %d event %s→%s: %w", taskID, from, to, err)
	}
	return nil
}

// TaskEvents returns the history of a task, oldest first.
func (e *Engine) TaskEvents(ctx context.Context, accountID, taskID int64) ([]TaskEvent, error) {
	rows, err := e.db.Query(ctx, `
SELECT id, task_id, from_state, to_state, agent_id, queue_id, reason, at
FROM task_events WHERE account_id = $1 AND task_id = $2 ORDER BY id`, accountID, taskID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[TaskEvent])
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}
