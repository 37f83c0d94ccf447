package main

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// The demo's routing history: one task per ticket of the history through the
// queue its team and channel lead to, with the wait, handle and wrap-up times
// of the ticket, plus the ~5% of calls and chats abandoned in queue, so the
// supervisor's service level, abandon rate and handle times have a past.
// The rows are the ones the routing engine writes (tasks and their
// task_events); only completed, abandoned and, for unanswered emails,
// queued tasks are written, never assigned ones, whose agents' load
// counters would then disagree with the tasks.

type genTask struct {
	id                       int64
	queue                    orgQueue
	channel, state, reason   string
	priorityName             string
	ticket, customer, agent  int64
	request                  map[string]int
	enqueued, assigned, done time.Time // done: ended (abandoned) or completed
	ended                    time.Time
	wait                     int
	contactReason            int64
	cancelReason             int64
	resolution               string
}

func queueFor(team, channel string) string {
	switch {
	case team == "Sales" && (channel == "chat" || channel == "voice"):
		return "Sales"
	case team == "Billing" && (channel == "email" || channel == "voice"):
		return "Billing"
	}
	return "Support"
}

var priorityRank = map[string]int{"low": 1, "normal": 2, "high": 3, "urgent": 4}

func buildTasks(r *rand.Rand, o *org, m *model, now time.Time) []genTask {
	logn := func(median time.Duration, sigma float64) time.Duration {
		return time.Duration(float64(median) * math.Exp(r.NormFloat64()*sigma)).Round(time.Second)
	}
	var out []genTask
	for i := range m.tickets {
		t := &m.tickets[i]
		q, ok := o.queues[queueFor(t.team, t.channel)]
		if !ok {
			continue
		}
		c := &m.customers[t.cust]
		g := genTask{queue: q, channel: t.channel, priorityName: t.priority, ticket: t.id, customer: c.id, enqueued: t.created}
		if c.country == 'D' && queueFor(t.team, t.channel) == "Support" {
			g.request = map[string]int{"german": 1}
		}
		switch {
		case t.assignee == 0 && t.channel == "email":
			g.state = "queued"
		case t.assignee == 0 || t.firstResp.IsZero():
			continue // a call or chat being answered right now, or an email an agent took by hand
		default:
			// Calls and chats are answered with the first response; an email
			// is offered within a minute or so and answered later.
			wait := t.firstResp.Sub(t.created)
			if t.channel == "email" {
				wait = min(logn(10*time.Second, 0.8), wait)
			}
			handle := map[string]time.Duration{"voice": logn(6*time.Minute, 0.5), "chat": logn(10*time.Minute, 0.5)}[t.channel]
			if handle == 0 {
				handle = logn(8*time.Minute, 0.6)
			}
			g.state, g.agent, g.wait = "completed", t.assignee, int(wait/time.Second)
			g.assigned = t.created.Add(wait)
			g.ended = g.assigned.Add(handle)
			g.done = g.ended.Add(logn(45*time.Second, 0.5))
			if g.done.After(now) {
				continue // still being handled: would hold the agent's capacity
			}
			if t.done() {
				g.contactReason, g.cancelReason, g.resolution = o.contact[t.reason].id, t.cancelReason, t.resolution
			}
		}
		out = append(out, g)
	}
	// About 6% of calls and chats end in the queue: the customer hangs up
	// or closes the chat, some within 5 seconds (short abandons, left out
	// of the abandon rate, which comes to ~5%).
	picker := newTimePicker(m.start, now, int(now.Sub(m.start).Hours()/24)+1)
	offered := 0
	for _, g := range out {
		if g.channel != "email" {
			offered++
		}
	}
	for range offered * 6 / 94 {
		channel, reason := "voice", "hung up in queue"
		if r.Float64() < 0.4 {
			channel, reason = "chat", "chat closed in queue"
		}
		team := []string{"Sales", "Support", "Support", "Billing"}[r.IntN(4)]
		q, ok := o.queues[queueFor(team, channel)]
		if !ok || len(m.customers) == 0 {
			continue
		}
		wait := logn(50*time.Second, 0.9)
		if r.Float64() < 0.15 {
			wait = time.Duration(1+r.IntN(4)) * time.Second
		}
		at := picker.draw(r)
		if at.Add(wait).After(now) {
			continue
		}
		out = append(out, genTask{queue: q, channel: channel, state: "abandoned", reason: reason, priorityName: "normal",
			customer: m.customers[r.IntN(len(m.customers))].id, enqueued: at, done: at.Add(wait), wait: int(wait / time.Second)})
	}
	return out
}

func copyTasks(ctx context.Context, tx pgx.Tx, bar *progressBar, o *org, tasks []genTask) (int64, error) {
	rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, $1)`, len(tasks))
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	for i := range tasks {
		tasks[i].id = ids[i]
	}
	null := func(id int64) any {
		if id == 0 {
			return nil
		}
		return id
	}
	i := 0
	n, err := copyRows(ctx, tx, bar, "tasks", len(tasks), "tasks", []string{"id", "account_id", "queue_id", "channel", "capacity_channel",
		"state", "priority", "priority_name", "ticket_id", "customer_id", "required_skills", "request_skills", "enqueued_at",
		"queue_entered_at", "offer_count", "agent_id", "assigned_at", "ended_at", "completed_at", "closed_at", "wait_seconds",
		"reason", "contact_reason_id", "cancellation_reason_id", "resolution_code", "updated_at"}, func() []any {
		if i == len(tasks) {
			return nil
		}
		g := &tasks[i]
		i++
		required := map[string]int{}
		for k, v := range g.queue.skills {
			required[k] = v
		}
		for k, v := range g.request {
			required[k] = max(required[k], v)
		}
		req, _ := json.Marshal(required)
		asked, _ := json.Marshal(g.request)
		if g.request == nil {
			asked = []byte("{}")
		}
		capChannel := g.channel
		if capChannel != "voice" && capChannel != "chat" {
			capChannel = "email"
		}
		row := []any{g.id, o.accountID, g.queue.id, g.channel, capChannel, g.state, priorityRank[g.priorityName]*100 + g.queue.priority,
			g.priorityName, null(g.ticket), g.customer, string(req), string(asked), g.enqueued, g.enqueued}
		switch g.state {
		case "completed":
			row = append(row, 1, g.agent, g.assigned, g.ended, g.done, g.done, g.wait, "", null(g.contactReason), null(g.cancelReason), g.resolution, g.done)
		case "abandoned":
			row = append(row, 0, nil, nil, nil, nil, g.done, g.wait, g.reason, nil, nil, "", g.done)
		default:
			row = append(row, 0, nil, nil, nil, nil, nil, nil, "", nil, nil, "", g.enqueued)
		}
		return row
	})
	if err != nil {
		return n, err
	}
	// The events each task went through, as the engine logs them.
	var queue [][]any
	i = 0
	_, err = copyRows(ctx, tx, bar, "task events", len(tasks)*4, "task_events",
		[]string{"account_id", "task_id", "from_state", "to_state", "agent_id", "queue_id", "reason", "at"}, func() []any {
			for len(queue) == 0 {
				if i == len(tasks) {
					return nil
				}
				g := &tasks[i]
				i++
				ev := func(from, to string, agent any, reason string, at time.Time) {
					queue = append(queue, []any{o.accountID, g.id, from, to, agent, g.queue.id, reason, at})
				}
				ev("new", "queued", nil, "", g.enqueued)
				switch g.state {
				case "completed":
					offered := g.assigned.Add(-time.Duration(min(g.wait, 3)) * time.Second)
					ev("queued", "offered", g.agent, "", offered)
					ev("offered", "assigned", g.agent, "", g.assigned)
					ev("assigned", "wrapping", g.agent, "", g.ended)
					ev("wrapping", "completed", g.agent, g.resolution, g.done)
				case "abandoned":
					ev("queued", "abandoned", nil, g.reason, g.done)
				}
			}
			row := queue[0]
			queue = queue[1:]
			return row
		})
	return n, err
}
