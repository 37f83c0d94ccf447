package email

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// tableEvents writes events to stream_events as the hub's publisher does,
// in the transaction of the change.
type tableEvents struct{}

func (tableEvents) Publish(ctx context.Context, tx pgx.Tx, e Event) error {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO stream_events (account_id, stream, type, data) VALUES ($1, $2, $3, $4)`, e.AccountID, e.Stream, e.Type, data)
	return err
}

type streamEvent struct {
	Stream, Type string
	Data         map[string]any
}

// events lists what was published after event id `after`, oldest first.
func (e *env) events(after int64) ([]streamEvent, int64) {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT id, stream, type, data FROM stream_events WHERE account_id = $1 AND id > $2 ORDER BY id`, e.acct, after)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []streamEvent
	last := after
	for rows.Next() {
		var ev streamEvent
		if err := rows.Scan(&last, &ev.Stream, &ev.Type, &ev.Data); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out, last
}

func summary(evs []streamEvent) string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.Type+"@"+ev.Stream)
	}
	return strings.Join(s, " ")
}

func TestDesksHearMailAndDeliveryState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.Events = tableEvents{} })
	sk := newSink(t)
	ctx := context.Background()
	var amy int64
	e.db.QueryRow(ctx, `INSERT INTO agents (account_id, email, name, role) VALUES ($1, 'amy@example.com', 'Amy', 'agent') RETURNING id`, e.acct).Scan(&amy)

	// A mail that opens a ticket: no desk has it open and nobody is
	// assigned yet, so nothing is published.
	e.mustSend(simpleMail("ev-1@example.net", "jane@example.net", "Live", "first"))
	tkt := e.ticketOf("ev-1@example.net")
	evs, last := e.events(0)
	ts := fmt.Sprintf("ticket:%d", tkt)
	if len(evs) != 0 {
		t.Fatalf("new ticket published %q", summary(evs))
	}

	// The customer writes again: the ticket's stream hears the message and
	// the ticket.
	e.mustSend(strings.Replace(simpleMail("ev-1b@example.net", "jane@example.net", "Re: Live", "more"), "\n\n", "\nIn-Reply-To: <ev-1@example.net>\n\n", 1))
	evs, last = e.events(last)
	if got := summary(evs); got != "message.created@"+ts+" ticket.updated@"+ts {
		t.Fatalf("reply published %q", got)
	}
	if evs[0].Data["body"] != "more" || evs[0].Data["direction"] != "in" || evs[1].Data["id"] != float64(tkt) {
		t.Errorf("event data %v / %v", evs[0].Data, evs[1].Data)
	}

	// Assigned to Amy and pending: the customer's answer reaches her stream
	// too, and the ticket it reopened.
	e.db.Exec(ctx, `UPDATE tickets SET assignee_id = $2, status = 'pending' WHERE id = $1`, tkt, amy)
	e.mustSend(strings.Replace(simpleMail("ev-2@example.net", "jane@example.net", "Re: Live", "second"), "\n\n", "\nIn-Reply-To: <ev-1@example.net>\n\n", 1))
	evs, last = e.events(last)
	as := fmt.Sprintf("agent:%d", amy)
	if got := summary(evs); got != "message.created@"+ts+" message.created@"+as+" ticket.updated@"+ts+" ticket.updated@"+as {
		t.Fatalf("reply published %q", got)
	}
	if evs[2].Data["status"] != "open" {
		t.Errorf("ticket.updated shows status %v", evs[2].Data["status"])
	}

	// An agent's reply: message.created when queued, message.updated with
	// the delivery state when the relay accepted it.
	s := startSender(t, e, sk.relay())
	msg, err := s.QueueReply(ctx, agentdesk.Actor{AccountID: e.acct, AgentID: amy, Role: agentdesk.RoleAgent}, tkt, "On its way.", "")
	if err != nil {
		t.Fatal(err)
	}
	e.waitDelivery(msg)
	evs, last = e.events(last)
	if got := summary(evs); got != "message.created@"+ts+" message.created@"+as+" ticket.updated@"+ts+" ticket.updated@"+as+" message.updated@"+ts {
		t.Fatalf("agent reply published %q", got)
	}
	if d := deliveryOf(evs[0].Data); d["state"] != "queued" {
		t.Errorf("queued reply shows delivery %v", d)
	}
	if d := deliveryOf(evs[4].Data); evs[4].Data["id"] != float64(msg) || d["state"] != "sent" || !strings.HasPrefix(d["answer"].(string), "250") || d["attempts"] != float64(1) {
		t.Errorf("message.updated %v", evs[4].Data)
	}

	// Refused by the relay: message.updated with "failed" and the answer.
	sk.mu.Lock()
	sk.failNext = []*smtp.SMTPError{{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected by policy"}}
	sk.mu.Unlock()
	msg2, err := s.QueueReply(ctx, agentdesk.Actor{AccountID: e.acct, AgentID: amy, Role: agentdesk.RoleAgent}, tkt, "Again.", "")
	if err != nil {
		t.Fatal(err)
	}
	e.waitDelivery(msg2)
	evs, _ = e.events(last)
	upd := evs[len(evs)-1]
	if d := deliveryOf(upd.Data); upd.Type != MessageUpdated || upd.Data["id"] != float64(msg2) || d["state"] != "failed" || !strings.Contains(d["answer"].(string), "rejected by policy") {
		t.Errorf("failed delivery published %s %v", upd.Type, upd.Data)
	}
}

func deliveryOf(msg map[string]any) map[string]any {
	em, _ := msg["meta"].(map[string]any)["email"].(map[string]any)
	d, _ := em["delivery"].(map[string]any)
	return d
}

// A refused mail publishes nothing: events are written in the transaction
// that stores the mail.
func TestRefusedMailPublishesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.Events = tableEvents{} })
	e.mustSend(simpleMail("dup@example.net", "jane@example.net", "Once", "x"))
	_, last := e.events(0)
	e.mustSend(simpleMail("dup@example.net", "jane@example.net", "Once", "x")) // duplicate delivery
	if err := e.send("jane@example.net", []string{"nobody@example.com"}, simpleMail("x@example.net", "jane@example.net", "No", "x")); err == nil {
		t.Fatal("mail to an unknown address accepted")
	}
	if evs, _ := e.events(last); len(evs) != 0 {
		t.Errorf("published %s", summary(evs))
	}
}
