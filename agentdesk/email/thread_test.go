package email

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"agentdesk/agentdesk"
)

func (e *env) sender() *Sender {
	e.t.Helper()
	s, err := NewSender(e.cfg, RelayConfig{}, e.db, quietLog())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// reply queues an agent reply on ticket and returns its Message-ID.
func (e *env) reply(ticket int64, body string) string {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.sender().QueueReply(ctx, agentdesk.Actor{AccountID: e.acct, Role: agentdesk.RoleAgent}, ticket, body, ""); err != nil {
		e.t.Fatal(err)
	}
	var id string
	if err := e.db.QueryRow(ctx, `SELECT rfc_message_id FROM email_messages WHERE account_id = $1 AND ticket_id = $2 AND direction = 'out' ORDER BY id DESC LIMIT 1`, e.acct, ticket).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) threadedBy(id string) string {
	m := e.message(id)
	s, _ := m.Meta["email"].(map[string]any)["threaded_by"].(string)
	return s
}

var outlookRoot = []byte("\x01\xd8\x8b\x2a\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00\x12\x34")

// TestThreadingHeaderShapes sends, for each real-world client's way of
// replying, an original mail, an agent reply, and the customer's answer,
// and checks the answer lands in the right ticket by the expected rule.
func TestThreadingHeaderShapes(t *testing.T) {
	t.Parallel()
	const customer = "Jane Doe <jane@example.net>"
	type ctx struct {
		orig, agent, token string
		ticket             int64
	}
	tests := []struct {
		name    string
		origHdr string // extra headers on the customer's first mail
		reply   func(c ctx) string
		from    string
		rcpt    string
		sameTkt bool
		by      string
	}{
		{
			name: "gmail", sameTkt: true, by: ByReference,
			reply: func(c ctx) string {
				return fmt.Sprintf("In-Reply-To: <%s>\nReferences: <%s> <%s>\nSubject: Re: Order 1001 late\nX-Mailer: Gmail\n", c.agent, c.orig, c.agent)
			},
		},
		{
			name: "thunderbird", sameTkt: true, by: ByReference,
			reply: func(c ctx) string {
				return fmt.Sprintf("In-Reply-To: <%s>\nReferences: <%s>\n <%s>\nSubject: Re: Order 1001 late\nUser-Agent: Mozilla Thunderbird\n", c.agent, c.orig, c.agent)
			},
		},
		{
			name: "apple mail references only", sameTkt: true, by: ByReference,
			reply: func(c ctx) string {
				return fmt.Sprintf("References: <%s>\n <%s>\nSubject: Re: Order 1001 late\nX-Mailer: Apple Mail (2.3445)\n", c.orig, c.agent)
			},
		},
		{
			name: "outlook thread-index only", sameTkt: true, by: ByThreadIndex,
			origHdr: "Thread-Topic: Order 1001 late\nThread-Index: " + base64.StdEncoding.EncodeToString(outlookRoot) + "\n",
			reply: func(c ctx) string {
				return "Subject: RE: Order 1001 late\nThread-Topic: Order 1001 late\nThread-Index: " + base64.StdEncoding.EncodeToString(append(append([]byte{}, outlookRoot...), 1, 2, 3, 4, 5)) + "\n"
			},
		},
		{
			name: "outlook thread-topic of a reply", sameTkt: true, by: ByThreadTopic,
			reply: func(c ctx) string {
				other := append([]byte("\x01\xd9"), outlookRoot[2:]...)
				return "Subject: Order 1001 late\nThread-Topic: Order 1001 late\nThread-Index: " + base64.StdEncoding.EncodeToString(append(other, 9, 9, 9, 9, 9)) + "\n"
			},
		},
		{
			name: "outlook new conversation with the same topic is a new ticket", sameTkt: false,
			reply: func(c ctx) string {
				other := append([]byte("\x01\xd9"), outlookRoot[2:]...)
				return "Subject: Order 1001 late\nThread-Topic: Order 1001 late\nThread-Index: " + base64.StdEncoding.EncodeToString(other) + "\n"
			},
		},
		{
			name: "changed subject keeps thread", sameTkt: true, by: ByReference,
			reply: func(c ctx) string {
				return fmt.Sprintf("In-Reply-To: <%s>\nSubject: Actually, a different question\n", c.agent)
			},
		},
		{
			name: "token in plus address", sameTkt: true, by: ByToken,
			rcpt:  "plus",
			reply: func(c ctx) string { return "Subject: my reply without any headers\n" },
		},
		{
			name: "token in an id we never stored", sameTkt: true, by: ByToken,
			reply: func(c ctx) string {
				return fmt.Sprintf("In-Reply-To: <adk.%s.0000@old-install.example.com>\nSubject: hello\n", c.token)
			},
		},
		{
			name: "subject tag", sameTkt: true, by: BySubjectTag,
			reply: func(c ctx) string { return fmt.Sprintf("Subject: Question about [#%d]\n", c.ticket) },
		},
		{
			name: "subject tag from a stranger opens a ticket", sameTkt: false, from: "mallory@example.org",
			reply: func(c ctx) string { return fmt.Sprintf("Subject: Question about [#%d]\n", c.ticket) },
		},
		{
			name: "re: subject from same sender", sameTkt: true, by: BySubject,
			reply: func(c ctx) string { return "Subject: Re: Order 1001 late\n" },
		},
		{
			name: "same subject without re: is a new ticket", sameTkt: false,
			reply: func(c ctx) string { return "Subject: Order 1001 late\n" },
		},
		{
			name: "re: subject from another sender is a new ticket", sameTkt: false, from: "john@example.org",
			reply: func(c ctx) string { return "Subject: Re: Order 1001 late\n" },
		},
		{
			name: "forwarded mail is a new ticket", sameTkt: false,
			reply: func(c ctx) string {
				return "Subject: Fwd: Order 1001 late\nReferences: <something@elsewhere.example>\n"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			slug := strings.ReplaceAll(tc.name, " ", "-")
			c := ctx{orig: "orig-" + slug + "@example.net"}
			e.mustSend(fmt.Sprintf("From: %s\nTo: support@example.com\nSubject: Order 1001 late\nMessage-ID: <%s>\n%s\nWhere is my order?\n", customer, c.orig, tc.origHdr))
			c.ticket = e.ticketOf(c.orig)
			c.agent = e.reply(c.ticket, "It ships tomorrow.")
			c.token = deriveKeys(testSecret).ticketToken(e.acct, c.ticket)
			from := customer
			if tc.from != "" {
				from = tc.from
			}
			rcpt := "support@example.com"
			if tc.rcpt == "plus" {
				rcpt = plusAddress(rcpt, c.token)
			}
			replyID := "reply-" + slug + "@example.net"
			raw := fmt.Sprintf("From: %s\nTo: %s\nMessage-ID: <%s>\n%s\nThanks!\n", from, rcpt, replyID, tc.reply(c))
			if err := e.send("x@example.net", []string{rcpt}, raw); err != nil {
				t.Fatal(err)
			}
			got := e.ticketOf(replyID)
			if (got == c.ticket) != tc.sameTkt {
				t.Fatalf("reply landed in ticket %d, original ticket %d, want same=%v", got, c.ticket, tc.sameTkt)
			}
			if tc.sameTkt && e.threadedBy(replyID) != tc.by {
				t.Errorf("threaded by %q, want %q", e.threadedBy(replyID), tc.by)
			}
			wantTasks := 1
			if !tc.sameTkt {
				wantTasks = 2
			}
			if n := e.count(`SELECT count(*) FROM test_tasks`); n != wantTasks {
				t.Errorf("tasks = %d, want %d (a reply to an open ticket is not routed again)", n, wantTasks)
			}
		})
	}
}

func TestReplyToClosedTicket(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{ClosedReopen, ClosedFollowUp} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(_ *Config, m *Mailbox) { m.ClosedReply = policy })
			ctx := context.Background()
			e.mustSend(simpleMail("c1@example.net", "jane@example.net", "Broken", "help"))
			tkt := e.ticketOf("c1@example.net")
			agentMsg := e.reply(tkt, "Fixed.")
			for _, status := range []string{"solved", "closed"} {
				if _, err := e.db.Exec(ctx, `UPDATE tickets SET status = $2, closed_at = CASE WHEN $2 = 'closed' THEN now() END WHERE id = $1`, tkt, status); err != nil {
					t.Fatal(err)
				}
				// An out-of-office answer never reopens anything.
				ooo := fmt.Sprintf("From: jane@example.net\nTo: support@example.com\nSubject: Automatic reply: Re: Broken\nAuto-Submitted: auto-replied\nIn-Reply-To: <%s>\nMessage-ID: <ooo-%s@example.net>\n\nI am away.\n", agentMsg, status)
				e.mustSend(ooo)
				if got := e.ticketOf("ooo-" + status + "@example.net"); got != tkt {
					t.Errorf("auto-reply went to ticket %d", got)
				}
				var st string
				e.db.QueryRow(ctx, `SELECT status FROM tickets WHERE id = $1`, tkt).Scan(&st)
				if st != status {
					t.Errorf("auto-reply changed status %s to %s", status, st)
				}
				id := "again-" + status + "@example.net"
				e.mustSend(fmt.Sprintf("From: jane@example.net\nTo: support@example.com\nSubject: Re: Broken\nIn-Reply-To: <%s>\nMessage-ID: <%s>\n\nIt broke again.\n", agentMsg, id))
				got := e.ticketOf(id)
				e.db.QueryRow(ctx, `SELECT status FROM tickets WHERE id = $1`, tkt).Scan(&st)
				switch {
				case status == "solved" || policy == ClosedReopen:
					if got != tkt || st != "open" {
						t.Errorf("%s ticket: reply went to %d (status %s), want reopened %d", status, got, st, tkt)
					}
				default:
					if got == tkt || st != "closed" {
						t.Errorf("closed ticket with follow-up: reply went to %d, status %s", got, st)
					}
					if n := e.count(`SELECT count(*) FROM email_ticket_links WHERE ticket_id = $1 AND follows_id = $2`, got, tkt); n != 1 {
						t.Errorf("follow-up not linked")
					}
				}
			}
			// Original + (solved reopen) + (closed reopen or follow-up): three tasks.
			if n := e.count(`SELECT count(*) FROM test_tasks`); n != 3 {
				t.Errorf("tasks = %d, want 3", n)
			}
		})
	}
}

func TestBounceMarksAddressAndDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSend(simpleMail("b1@example.net", "gone@example.net", "Help", "please"))
	tkt := e.ticketOf("b1@example.net")
	out := e.reply(tkt, "Here you go.")
	before := e.count(`SELECT count(*) FROM test_tasks`)
	if err := e.send("", []string{"support@example.com"}, strings.Replace(dsn, "%s", out, 1)); err != nil {
		t.Fatal(err)
	}
	if got := e.ticketOf("bounce1@mx.example.net"); got != tkt {
		t.Errorf("bounce went to ticket %d, want %d", got, tkt)
	}
	var status, diag string
	if err := e.db.QueryRow(context.Background(), `SELECT status, diagnostic FROM email_failing_addresses WHERE account_id = $1 AND address = 'gone@example.net'`, e.acct).Scan(&status, &diag); err != nil {
		t.Fatalf("address not marked failing: %v", err)
	}
	var state, answer string
	e.db.QueryRow(context.Background(), `SELECT state, last_answer FROM email_deliveries WHERE ticket_id = $1`, tkt).Scan(&state, &answer)
	if state != "failed" || !strings.Contains(answer, "5.1.1") {
		t.Errorf("delivery %s %q", state, answer)
	}
	out2 := e.message(out)
	if d := out2.Meta["email"].(map[string]any)["delivery"].(map[string]any); d["state"] != "failed" {
		t.Errorf("message delivery meta = %v", d)
	}
	if n := e.count(`SELECT count(*) FROM test_tasks`); n != before {
		t.Errorf("a bounce was routed")
	}
	// A bounce about mail we never sent is kept raw and opens nothing.
	snap := e.count(`SELECT count(*) FROM tickets`)
	if err := e.send("", []string{"support@example.com"}, strings.Replace(strings.Replace(dsn, "%s", "unknown@elsewhere", 1), "bounce1@", "bounce2@", 1)); err != nil {
		t.Fatal(err)
	}
	if e.ticketOf("bounce2@mx.example.net") != 0 || e.count(`SELECT count(*) FROM tickets`) != snap {
		t.Errorf("unmatched bounce opened a ticket")
	}
}

func TestAutoAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *Config, m *Mailbox) { m.AutoAck = true })
	acks := func() int { return e.count(`SELECT count(*) FROM email_deliveries WHERE kind = 'auto_ack'`) }
	e.mustSend(simpleMail("a1@example.net", "jane@example.net", "First", "x"))
	if acks() != 1 {
		t.Fatalf("acks = %d, want 1", acks())
	}
	var raw string
	e.db.QueryRow(context.Background(), `SELECT convert_from(raw, 'UTF8') FROM email_deliveries WHERE kind = 'auto_ack'`).Scan(&raw)
	tkt := e.ticketOf("a1@example.net")
	if !strings.Contains(raw, fmt.Sprintf("#%d", tkt)) || !strings.Contains(raw, "Auto-Submitted: auto-replied") || !strings.Contains(raw, "In-Reply-To: <a1@example.net>") {
		t.Errorf("ack lacks ticket number or loop protection:\n%s", raw)
	}
	e.mustSend(simpleMail("a2@example.net", "jane@example.net", "Second", "x")) // rate-limited
	e.mustSend(simpleMail("a3@example.net", "bot@example.net", "Automatic reply: hi", "x"))
	e.mustSend("From: list@example.net\nTo: support@example.com\nSubject: News\nPrecedence: bulk\nMessage-ID: <a4@x>\n\nx\n")
	if err := e.send("", []string{"support@example.com"}, simpleMail("a5@example.net", "noreply@example.net", "Null sender", "x")); err != nil {
		t.Fatal(err)
	}
	e.mustSend(simpleMail("a6@example.net", "other@example.net", "Other person", "x"))
	if acks() != 2 {
		t.Errorf("acks = %d, want 2 (jane once, other once)", acks())
	}
	// The customer's answer to the acknowledgement threads to the ticket.
	var ackID string
	e.db.QueryRow(context.Background(), `SELECT rfc_message_id FROM email_messages WHERE direction = 'out' AND ticket_id = $1`, tkt).Scan(&ackID)
	e.mustSend(fmt.Sprintf("From: jane@example.net\nTo: support@example.com\nSubject: Re: [#%d] Re: First\nIn-Reply-To: <%s>\nMessage-ID: <a7@example.net>\n\nmore\n", tkt, ackID))
	if e.ticketOf("a7@example.net") != tkt {
		t.Error("answer to the acknowledgement did not thread")
	}
}

func TestAccountsAreSeparate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var acct2 int64
	e.db.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ('Globex') RETURNING id`).Scan(&acct2)
	if err := CreateMailbox(ctx, e.db, acct2, &Mailbox{Address: "help@globex.example"}); err != nil {
		t.Fatal(err)
	}
	if err := CreateMailbox(ctx, e.db, acct2, &Mailbox{Address: "Support@Example.com"}); agentdesk.ErrorKind(err) != agentdesk.Conflict {
		t.Errorf("second account claimed a taken address: %v", err)
	}
	if err := CreateMailbox(ctx, e.db, acct2, &Mailbox{Address: "help+x@globex.example"}); agentdesk.ErrorKind(err) != agentdesk.Invalid {
		t.Errorf("plus-address accepted as a support address: %v", err)
	}
	if l, err := Mailboxes(ctx, e.db, acct2); err != nil || len(l) != 1 || l[0].Address != "help@globex.example" {
		t.Errorf("account 2 mailboxes = %+v, %v", l, err)
	}
	e.mustSend(simpleMail("acme1@example.net", "jane@example.net", "Acme question", "x"))
	agentMsg := e.reply(e.ticketOf("acme1@example.net"), "answer")
	// The same customer writes to the other company, quoting Acme's mail:
	// it must not land in Acme's ticket, and gets its own customer record.
	raw := fmt.Sprintf("From: jane@example.net\nTo: help@globex.example\nSubject: Re: Acme question\nIn-Reply-To: <%s>\nMessage-ID: <globex1@example.net>\n\nx\n", agentMsg)
	if err := e.send("jane@example.net", []string{"help@globex.example"}, raw); err != nil {
		t.Fatal(err)
	}
	var acct, customers int64
	e.db.QueryRow(ctx, `SELECT t.account_id FROM email_messages e JOIN tickets t ON t.id = e.ticket_id WHERE e.rfc_message_id = 'globex1@example.net'`).Scan(&acct)
	e.db.QueryRow(ctx, `SELECT count(DISTINCT customer_id) FROM identities WHERE value = 'jane@example.net'`).Scan(&customers)
	if acct != acct2 || customers != 2 {
		t.Errorf("mail to account 2 stored in account %d; %d customers for jane", acct, customers)
	}
}
