package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"agentdesk/agentdesk"
)

func TestAgentReplyReachesCustomerAndThreadsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sk := newSink(t)
	s := startSender(t, e, sk.relay())
	ctx := context.Background()
	var agentID int64
	e.db.QueryRow(ctx, `INSERT INTO agents (account_id, email, name, role) VALUES ($1, 'amy@example.com', 'Amy', 'agent') RETURNING id`, e.acct).Scan(&agentID)

	e.mustSend("From: Jane Doe <jane@example.net>\nTo: support@example.com\nCc: boss@example.net\nSubject: Broken kettle\nMessage-ID: <kettle-1@example.net>\n\nMy kettle broke.\n")
	tkt := e.ticketOf("kettle-1@example.net")
	actor := agentdesk.Actor{AccountID: e.acct, AgentID: agentID, Role: agentdesk.RoleAgent}
	msgID, err := s.QueueReply(ctx, actor, tkt, "We will replace it.\nAmy", `<p>We will <b>replace</b> it.</p><script>x()</script>`,
		OutAttachment{Filename: "return-label.pdf", ContentType: "application/pdf", Data: []byte("%PDF label")})
	if err != nil {
		t.Fatal(err)
	}
	got := sk.wait(t, 0)
	if !got.tls || got.user != "desk" || got.from != "support@example.com" || len(got.to) != 1 || got.to[0] != "jane@example.net" {
		t.Errorf("relay saw tls=%v user=%q from=%q to=%v (the Cc'd address must not receive the reply)", got.tls, got.user, got.from, got.to)
	}
	p, err := Parse(got.raw)
	if err != nil {
		t.Fatal(err)
	}
	token := deriveKeys(testSecret).ticketToken(e.acct, tkt)
	if p.Subject != "Re: Broken kettle" || p.From.Address != "support@example.com" || p.From.Name != "Acme Support" {
		t.Errorf("subject %q from %+v", p.Subject, p.From)
	}
	if len(p.InReplyTo) != 1 || p.InReplyTo[0] != "kettle-1@example.net" || len(p.References) != 1 || p.References[0] != "kettle-1@example.net" {
		t.Errorf("In-Reply-To %v References %v", p.InReplyTo, p.References)
	}
	if !strings.Contains(p.MessageID, token) || !strings.HasSuffix(p.MessageID, "@desk.example.com") {
		t.Errorf("Message-ID %q lacks the ticket token %s", p.MessageID, token)
	}
	if len(p.ReplyTo) != 1 || p.ReplyTo[0].Address != strings.ToLower(plusAddress("support@example.com", token)) {
		t.Errorf("Reply-To = %+v", p.ReplyTo)
	}
	if p.Text != "We will replace it.\nAmy" || !strings.Contains(p.HTML, "<b>replace</b>") || strings.Contains(p.HTML, "script") {
		t.Errorf("text %q html %q", p.Text, p.HTML)
	}
	if len(p.Attachments) != 1 || p.Attachments[0].Filename != "return-label.pdf" || string(p.Attachments[0].Data) != "%PDF label" {
		t.Errorf("attachments = %+v", p.Attachments)
	}
	if ct := mimeTree(t, got.raw); ct != "multipart/mixed[multipart/alternative[text/plain,text/html],application/pdf]" {
		t.Errorf("MIME structure = %s", ct)
	}
	state, answer, _ := e.waitDelivery(msgID)
	if state != "sent" || !strings.HasPrefix(answer, "250") {
		t.Errorf("delivery %s %q", state, answer)
	}
	var metaState string
	var firstResponse bool
	e.db.QueryRow(ctx, `SELECT meta->'email'->'delivery'->>'state' FROM messages WHERE id = $1`, msgID).Scan(&metaState)
	e.db.QueryRow(ctx, `SELECT first_response_at IS NOT NULL FROM tickets WHERE id = $1`, tkt).Scan(&firstResponse)
	if metaState != "sent" || !firstResponse {
		t.Errorf("message shows delivery %q, first response recorded %v", metaState, firstResponse)
	}

	// Jane's client answers the way clients do: In-Reply-To our Message-ID,
	// References the conversation, to the Reply-To address.
	answerRaw := fmt.Sprintf("From: Jane Doe <jane@example.net>\nTo: %s\nSubject: Re: Broken kettle\nMessage-ID: <kettle-2@example.net>\nIn-Reply-To: <%s>\nReferences: <kettle-1@example.net> <%s>\n\nThanks! Where do I send it?\n\nOn Tue, Acme Support wrote:\n> We will replace it.\n",
		p.ReplyTo[0].Address, p.MessageID, p.MessageID)
	if err := e.send("jane@example.net", []string{p.ReplyTo[0].Address}, answerRaw); err != nil {
		t.Fatal(err)
	}
	if e.ticketOf("kettle-2@example.net") != tkt || e.threadedBy("kettle-2@example.net") != ByReference {
		t.Errorf("customer's answer did not thread back")
	}
	if v := e.message("kettle-2@example.net").Meta["email"].(map[string]any)["visible"]; v != "Thanks! Where do I send it?" {
		t.Errorf("visible = %q", v)
	}

	// The second reply carries the whole conversation in References.
	msg2, err := s.QueueReply(ctx, actor, tkt, "Use the label.", "")
	if err != nil {
		t.Fatal(err)
	}
	e.waitDelivery(msg2)
	p2, _ := Parse(sk.wait(t, 1).raw)
	if strings.Join(p2.References, " ") != "kettle-1@example.net "+p.MessageID+" kettle-2@example.net" || p2.InReplyTo[0] != "kettle-2@example.net" {
		t.Errorf("second reply References %v In-Reply-To %v", p2.References, p2.InReplyTo)
	}
}

func mimeTree(t *testing.T, raw []byte) string {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(*message.Entity) string
	walk = func(e *message.Entity) string {
		ct, _, _ := e.Header.ContentType()
		mr := e.MultipartReader()
		if mr == nil {
			return ct
		}
		var parts []string
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			parts = append(parts, walk(p))
		}
		return ct + "[" + strings.Join(parts, ",") + "]"
	}
	return walk(ent)
}

func TestDeliveryRetriesAndFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sk := newSink(t)
	startSender(t, e, sk.relay())
	ctx := context.Background()
	s := e.sender()
	actor := agentdesk.Actor{AccountID: e.acct, Role: agentdesk.RoleAgent}
	e.mustSend(simpleMail("r1@example.net", "jane@example.net", "Retry me", "x"))
	tkt := e.ticketOf("r1@example.net")

	sk.mu.Lock()
	sk.failNext = []*smtp.SMTPError{{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}}
	sk.mu.Unlock()
	m1, err := s.QueueReply(ctx, actor, tkt, "first", "")
	if err != nil {
		t.Fatal(err)
	}
	if state, _, attempts := e.waitDelivery(m1); state != "sent" || attempts != 2 {
		t.Errorf("after a 451: %s after %d attempts, want sent after 2", state, attempts)
	}

	sk.mu.Lock()
	sk.failNext = []*smtp.SMTPError{{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}}
	sk.mu.Unlock()
	m2, _ := s.QueueReply(ctx, actor, tkt, "second", "")
	state, answer, attempts := e.waitDelivery(m2)
	if state != "failed" || attempts != 1 || !strings.Contains(answer, "550") || !strings.Contains(answer, "mailbox unavailable") {
		t.Errorf("after a 550: %s %q after %d attempts", state, answer, attempts)
	}
	var meta string
	e.db.QueryRow(ctx, `SELECT meta->'email'->'delivery'->>'answer' FROM messages WHERE id = $1`, m2).Scan(&meta)
	if !strings.Contains(meta, "550") {
		t.Errorf("the desk does not see the SMTP answer: %q", meta)
	}
	// River's side: the sent mail's job completed, the refused one's was
	// cancelled (never retried).
	if st := e.jobState(m1); st != "completed" {
		t.Errorf("job of the sent mail is %s", st)
	}
	if st := e.jobState(m2); st != "cancelled" {
		t.Errorf("job of the refused mail is %s", st)
	}
}

// jobState is the River state of the job delivering message msgID, once it
// has settled.
func (e *env) jobState(msgID int64) string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st string
		err := e.db.QueryRow(context.Background(), `
SELECT j.state::text FROM email_deliveries d JOIN river_job j ON j.id = d.river_job_id WHERE d.message_id = $1`, msgID).Scan(&st)
		if err != nil {
			e.t.Fatal(err)
		}
		if st != "running" && st != "available" && st != "retryable" {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job of message %d still %s", msgID, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A reply queued while no sender runs, and one whose first attempt failed
// on a sender that was then stopped, are both sent by the next sender to
// start: the outbox is River's jobs in PostgreSQL, not memory.
func TestQueuedRepliesAreSentAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sk := newSink(t)
	ctx := context.Background()
	e.mustSend(simpleMail("restart@example.net", "jane@example.net", "Restart", "x"))
	tkt := e.ticketOf("restart@example.net")
	actor := agentdesk.Actor{AccountID: e.acct}

	// First process: the relay refuses for now; the retry is due only
	// after the process is gone.
	sk.mu.Lock()
	sk.failNext = []*smtp.SMTPError{{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "greylisted"}}
	sk.mu.Unlock()
	relay := sk.relay()
	relay.Backoff = time.Second
	first, err := NewSender(e.cfg, relay, e.db, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	retried, err := first.QueueReply(ctx, actor, tkt, "tried before the restart", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitCount(fmt.Sprintf(`SELECT count(*) FROM email_deliveries WHERE message_id = %d AND attempts = 1 AND last_answer LIKE '%%greylisted%%'`, retried), 1)
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// While no process sends: queued, with the relay's answer on the message.
	waiting, err := e.sender().QueueReply(ctx, actor, tkt, "queued while down", "")
	if err != nil {
		t.Fatal(err)
	}
	var metaState, metaAnswer string
	e.db.QueryRow(ctx, `SELECT meta->'email'->'delivery'->>'state', meta->'email'->'delivery'->>'answer' FROM messages WHERE id = $1`, retried).Scan(&metaState, &metaAnswer)
	if metaState != "queued" || !strings.Contains(metaAnswer, "greylisted") {
		t.Errorf("between attempts the desk shows %s %q", metaState, metaAnswer)
	}

	startSender(t, e, sk.relay()) // the restarted process
	for _, m := range []struct {
		id       int64
		attempts int
	}{{retried, 2}, {waiting, 1}} {
		if state, _, attempts := e.waitDelivery(m.id); state != "sent" || attempts != m.attempts {
			t.Errorf("message %d after restart: %s after %d attempts, want sent after %d", m.id, state, attempts, m.attempts)
		}
		if st := e.jobState(m.id); st != "completed" {
			t.Errorf("job of message %d is %s", m.id, st)
		}
	}
	if n := e.count(`SELECT count(*) FROM email_deliveries`); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
}

func TestDeliveryGivesUpWhenRelayIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	relay := newSink(t).relay()
	relay.Addr = "127.0.0.1:1" // nothing listens there
	startSender(t, e, relay)
	e.mustSend(simpleMail("d1@example.net", "jane@example.net", "Down", "x"))
	m, err := e.sender().QueueReply(context.Background(), agentdesk.Actor{AccountID: e.acct}, e.ticketOf("d1@example.net"), "hello", "")
	if err != nil {
		t.Fatal(err)
	}
	state, answer, attempts := e.waitDelivery(m)
	if state != "failed" || attempts != 3 || !strings.Contains(answer, "connect to relay") {
		t.Errorf("%s %q after %d attempts", state, answer, attempts)
	}
	if st := e.jobState(m); st != "cancelled" {
		t.Errorf("job after the last attempt is %s", st)
	}
}

func TestQueueReplyErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.sender()
	e.mustSend(simpleMail("q1@example.net", "jane@example.net", "Q", "x"))
	tkt := e.ticketOf("q1@example.net")
	var other int64
	e.db.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ('Other') RETURNING id`).Scan(&other)
	var team, private int64
	e.db.QueryRow(ctx, `INSERT INTO teams (account_id, name, private) VALUES ($1, 'VIP', true) RETURNING id`, e.acct).Scan(&team)
	e.mustSend(simpleMail("q2@example.net", "vip@example.net", "VIP", "x"))
	private = e.ticketOf("q2@example.net")
	e.db.Exec(ctx, `UPDATE tickets SET team_id = $2 WHERE id = $1`, private, team)
	tests := []struct {
		name  string
		actor agentdesk.Actor
		tkt   int64
		body  string
		kind  agentdesk.Kind
	}{
		{"private team's ticket", agentdesk.Actor{AccountID: e.acct, Role: agentdesk.RoleAgent, TeamIDs: []int64{}}, private, "hi", agentdesk.NotFound},
		{"empty body", agentdesk.Actor{AccountID: e.acct}, tkt, "  ", agentdesk.Invalid},
		{"no such ticket", agentdesk.Actor{AccountID: e.acct}, tkt + 1000, "hi", agentdesk.NotFound},
		{"another account's ticket", agentdesk.Actor{AccountID: other}, tkt, "hi", agentdesk.NotFound},
		{"too long", agentdesk.Actor{AccountID: e.acct}, tkt, strings.Repeat("x", agentdesk.MaxMessageBody+1), agentdesk.TooLarge},
	}
	before := e.snapshot()
	for _, tc := range tests {
		if _, err := s.QueueReply(ctx, tc.actor, tc.tkt, tc.body, ""); agentdesk.ErrorKind(err) != tc.kind {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.kind)
		}
	}
	if e.snapshot() != before {
		t.Error("a refused reply changed the store")
	}
}

func TestTwoSendersDeliverEachMailOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sk := newSink(t)
	ctx := context.Background()
	e.mustSend(simpleMail("two@example.net", "jane@example.net", "Many replies", "x"))
	tkt := e.ticketOf("two@example.net")
	s := e.sender()
	const n = 20
	for i := range n {
		if _, err := s.QueueReply(ctx, agentdesk.Actor{AccountID: e.acct}, tkt, fmt.Sprintf("reply %d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	// Two processes' senders on one outbox.
	startSender(t, e, sk.relay())
	startSender(t, e, sk.relay())
	e.waitCount(`SELECT count(*) FROM email_deliveries WHERE state = 'sent'`, n)
	sk.mu.Lock()
	defer sk.mu.Unlock()
	seen := map[string]int{}
	for _, m := range sk.got {
		p, _ := Parse(m.raw)
		seen[p.MessageID]++
	}
	if len(sk.got) != n || len(seen) != n {
		t.Errorf("sink got %d mails with %d distinct Message-IDs, want %d each", len(sk.got), len(seen), n)
	}
}

func TestReplyOnTicketWithoutMailGoesToIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sk := newSink(t)
	s := startSender(t, e, sk.relay())
	ctx := context.Background()
	var cust, tkt int64
	e.db.QueryRow(ctx, `INSERT INTO customers (account_id, name) VALUES ($1, 'Chatty') RETURNING id`, e.acct).Scan(&cust)
	e.db.Exec(ctx, `INSERT INTO identities (account_id, customer_id, kind, value) VALUES ($1, $2, 'email', 'chatty@example.net')`, e.acct, cust)
	e.db.QueryRow(ctx, `INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id) VALUES ($1, 'From chat', 'open', 'normal', 'chat', $2) RETURNING id`, e.acct, cust).Scan(&tkt)
	m, err := s.QueueReply(ctx, agentdesk.Actor{AccountID: e.acct}, tkt, "Following up by mail.", "")
	if err != nil {
		t.Fatal(err)
	}
	e.waitDelivery(m)
	got := sk.wait(t, 0)
	p, _ := Parse(got.raw)
	if got.to[0] != "chatty@example.net" || p.Subject != "Re: From chat" || len(p.InReplyTo) != 0 {
		t.Errorf("to %v subject %q in-reply-to %v", got.to, p.Subject, p.InReplyTo)
	}
	// A customer without any address cannot be mailed: ErrNoAddress.
	var cust2, tkt2 int64
	e.db.QueryRow(ctx, `INSERT INTO customers (account_id, name) VALUES ($1, 'Phone only') RETURNING id`, e.acct).Scan(&cust2)
	e.db.QueryRow(ctx, `INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id) VALUES ($1, 'Call', 'open', 'normal', 'voice', $2) RETURNING id`, e.acct, cust2).Scan(&tkt2)
	if _, err := s.QueueReply(ctx, agentdesk.Actor{AccountID: e.acct}, tkt2, "hi", ""); !errors.Is(err, ErrNoAddress) {
		t.Errorf("reply to a customer without address: %v", err)
	}
}

func TestStopFinishesTheDeliveryInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sk := newSink(t)
	sk.hold, sk.inData = make(chan struct{}), make(chan struct{}, 1)
	ctx := context.Background()
	s, err := NewSender(e.cfg, sk.relay(), e.db, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	e.mustSend(simpleMail("stop@example.net", "jane@example.net", "Stop", "x"))
	msg, err := s.QueueReply(ctx, agentdesk.Actor{AccountID: e.acct}, e.ticketOf("stop@example.net"), "in flight", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-sk.inData // the relay has the mail and has not answered yet
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	// Let Stop cancel first; should the release win the race, the test
	// still passes, it just does not exercise the cancellation.
	time.Sleep(100 * time.Millisecond)
	close(sk.hold)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	var state string
	var attempts int
	e.db.QueryRow(ctx, `SELECT state, attempts FROM email_deliveries WHERE message_id = $1`, msg).Scan(&state, &attempts)
	if state != "sent" || attempts != 1 {
		t.Errorf("after Stop mid-delivery: %s after %d attempts, want sent after 1 (no second copy)", state, attempts)
	}
}
