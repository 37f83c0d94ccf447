package email

import (
	"context"
	"testing"

	"agentdesk/agentdesk"
)

// A database upgraded to migration 007 may hold deliveries the outbox before
// River queued (state queued, no River job). A starting Sender gives each a
// job once, and they are sent; sent or failed rows stay as they are.
func TestSenderAdoptsDeliveriesQueuedBeforeRiver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.mustSend("From: Jane <jane@example.net>\nTo: support@example.com\nSubject: Old outbox\nMessage-ID: <old-outbox@example.net>\n\nHello.\n")
	tkt := e.ticketOf("old-outbox@example.net")
	actor := agentdesk.Actor{AccountID: e.acct, Role: agentdesk.RoleAgent}
	// Replies queued by a process without a relay, then turned into what
	// the old outbox left behind: no River job.
	queued, err := e.sender().QueueReply(ctx, actor, tkt, "Queued before the upgrade.", "")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := e.sender().QueueReply(ctx, actor, tkt, "Sent before the upgrade.", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `DELETE FROM river_job`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `UPDATE email_deliveries SET river_job_id = NULL, attempts = 2, last_answer = '451 try later',
    state = CASE WHEN message_id = $1 THEN 'sent' ELSE 'queued' END`, sent); err != nil {
		t.Fatal(err)
	}

	sk := newSink(t)
	startSender(t, e, sk.relay())
	// Start adopted it before returning: one job, named on the delivery.
	if n := e.count(`SELECT count(*) FROM river_job`); n != 1 {
		t.Fatalf("%d River jobs after start, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM email_deliveries d JOIN river_job j ON j.id = d.river_job_id WHERE d.message_id = $1`, queued); n != 1 {
		t.Errorf("the stranded delivery names no River job")
	}
	got := sk.wait(t, 0)
	p, err := Parse(got.raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Text != "Queued before the upgrade." || len(got.to) != 1 || got.to[0] != "jane@example.net" {
		t.Errorf("relay got %q for %v", p.Text, got.to)
	}
	if state, _, _ := e.waitDelivery(queued); state != "sent" {
		t.Errorf("stranded delivery is %s", state)
	}
	var meta string
	e.db.QueryRow(ctx, `SELECT meta->'email'->'delivery'->>'state' FROM messages WHERE id = $1`, queued).Scan(&meta)
	if meta != "sent" {
		t.Errorf("message shows delivery %q", meta)
	}
	if n := e.count(`SELECT count(*) FROM email_deliveries WHERE message_id = $1 AND river_job_id IS NULL`, sent); n != 1 {
		t.Errorf("a delivery already sent was given a job")
	}

	// Another start (here, another process) adopts nothing more.
	startSender(t, e, sk.relay())
	if n := e.count(`SELECT count(*) FROM river_job`); n != 1 {
		t.Errorf("%d River jobs after a second start, want 1", n)
	}
	sk.mu.Lock()
	n := len(sk.got)
	sk.mu.Unlock()
	if n != 1 {
		t.Errorf("relay got %d mails, want 1", n)
	}
}
