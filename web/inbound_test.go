package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func TestInboundForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithPhoneRegion("DE"), WithFormRate(100))
	r := e.postForm(t, map[string]string{"name": "Clara Schmidt", "email": "Clara@Example.de", "phone": "030 1234567",
		"subject": "Rückruf", "message": "Bitte rufen Sie mich an."})
	mustStatus(t, r, http.StatusAccepted)
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("form answer is not readable cross-origin")
	}
	var c agentdesk.Customer
	rr := e.clients["agent"].do(t, "GET", "/api/v1/customers?q=clara%40example.de", nil)
	var l List[agentdesk.Customer]
	rr.json(t, &l)
	if len(l.Items) != 1 {
		t.Fatalf("customer by email: %s", rr.body)
	}
	c = l.Items[0]
	want := []agentdesk.Identity{{Kind: "email", Value: "clara@example.de"}, {Kind: "phone", Value: "+49301234567"}}
	if d := cmp.Diff(want, c.Identities, cmpIgnoreIDs); d != "" || c.Name != "Clara Schmidt" {
		t.Fatalf("customer %q identities (-want +got):\n%s", c.Name, d)
	}
	var subject, status, channel, kind, body string
	err := e.store.DB().QueryRow(t.Context(), `SELECT t.subject, t.status, t.channel, m.kind, m.body FROM tickets t JOIN messages m ON m.ticket_id = t.id
		WHERE t.customer_id = $1`, c.ID).Scan(&subject, &status, &channel, &kind, &body)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Rückruf" || status != "new" || channel != "form" || kind != "form" || body != "Bitte rufen Sie mich an." {
		t.Fatalf("ticket %q %s %s, message %s %q", subject, status, channel, kind, body)
	}

	// The same person again, by phone only and form-encoded as a plain HTML
	// form posts it: same customer, a second ticket, subject from the body.
	form := url.Values{"phone": {"+49 30 1234567"}, "message": {"Second request\nwith details"}, "submit": {"Send"}}
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/inbound/form?account=%d", e.srv.URL, e.account), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("form-encoded post: %d", res.StatusCode)
	}
	if n := e.count(t, `SELECT count(*) FROM customers`); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM tickets WHERE customer_id = $1 AND subject = 'Second request'`, c.ID); n != 1 {
		t.Fatalf("second ticket missing")
	}

	// A bot fills the honeypot: accepted, nothing stored.
	before := e.dumpRows(t)
	mustStatus(t, e.postForm(t, map[string]string{"email": "bot@spam.example", "message": "buy", "website": "http://spam.example"}), http.StatusAccepted)
	if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
		t.Fatalf("honeypot post stored something:\n%s", d)
	}

	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		field  string
	}{
		{"no account", "/api/v1/inbound/form", map[string]string{"email": "a@example.com", "message": "x"}, 422, "account"},
		{"unknown account", "/api/v1/inbound/form?account=999999", map[string]string{"email": "a@example.com", "message": "x"}, 404, ""},
		{"no message", "", map[string]string{"email": "a@example.com"}, 422, "message"},
		{"no address", "", map[string]string{"message": "hi"}, 422, "email"},
		{"bad email", "", map[string]string{"email": "a@", "message": "hi"}, 422, "email"},
		{"bad phone", "", map[string]string{"phone": "12", "message": "hi"}, 422, "phone"},
		{"unknown field", "", map[string]string{"email": "a@example.com", "message": "hi", "fax": "1"}, 400, "fax"},
		{"wrong type", "", `{"email": "a@example.com", "message": 5}`, 400, "message"},
		{"malformed", "", `{"email": `, 400, ""},
		{"oversize", "", `{"message": "` + strings.Repeat("x", 70<<10) + `"}`, 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = fmt.Sprintf("/api/v1/inbound/form?account=%d", e.account)
			}
			before := e.dumpRows(t)
			r := e.clients["anon"].do(t, "POST", path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if _, f := r.errorKind(t); f != tc.field {
				t.Errorf("field %q, want %q", f, tc.field)
			}
			if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
				t.Errorf("database changed:\n%s", d)
			}
		})
	}
}

func TestInboundFormRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithFormRate(3))
	for i := range 3 {
		mustStatus(t, e.postForm(t, map[string]string{"email": "a@example.com", "message": fmt.Sprint("try ", i)}), http.StatusAccepted)
	}
	r := e.postForm(t, map[string]string{"email": "a@example.com", "message": "one too many"})
	mustStatus(t, r, http.StatusTooManyRequests)
	if n := e.count(t, `SELECT count(*) FROM tickets`); n != 3 {
		t.Fatalf("%d tickets, want 3", n)
	}
}

// recordingEnqueuer stands in for the routing engine: it writes a row in
// the caller's transaction (as the engine's task insert does) and can be
// told to fail after writing it.
type recordingEnqueuer struct {
	mu   sync.Mutex
	fail bool
	reqs []agentdesk.TaskRequest
}

func (q *recordingEnqueuer) EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO audit_log (account_id, action, target) VALUES ($1, 'test.enqueue', $2) RETURNING id`,
		req.AccountID, fmt.Sprintf("ticket:%d", req.TicketID)).Scan(&id)
	if err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail {
		return 0, errors.New("queue unavailable")
	}
	q.reqs = append(q.reqs, req)
	return id, nil
}

func TestInboundFormEnqueuesInTheSameTransaction(t *testing.T) {
	t.Parallel()
	q := &recordingEnqueuer{}
	e := newEnv(t, WithEnqueuer(q))
	mustStatus(t, e.postForm(t, map[string]string{"email": "new@example.com", "message": "route me"}), http.StatusAccepted)
	var customerID, ticketID int64
	if err := e.store.DB().QueryRow(t.Context(), `SELECT customer_id, id FROM tickets`).Scan(&customerID, &ticketID); err != nil {
		t.Fatal(err)
	}
	want := []agentdesk.TaskRequest{{AccountID: e.account, Channel: agentdesk.ChannelForm, Priority: agentdesk.PriorityNormal, TicketID: ticketID, CustomerID: customerID}}
	if d := cmp.Diff(want, q.reqs); d != "" {
		t.Fatalf("enqueued (-want +got):\n%s", d)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'test.enqueue'`); n != 1 {
		t.Fatalf("enqueue rows: %d", n)
	}

	// A failing enqueue rolls back the customer, ticket, message and its own
	// row: a stored contact is always a routed contact.
	q.mu.Lock()
	q.fail = true
	q.mu.Unlock()
	before := e.dumpRows(t)
	r := e.postForm(t, map[string]string{"email": "another@example.com", "phone": "+14155550132", "message": "lost?"})
	mustStatus(t, r, http.StatusInternalServerError)
	if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
		t.Fatalf("failed enqueue left rows behind:\n%s", d)
	}
}

// TestIngestAppendsAndReopens drives Store.Ingest as chat and social
// adapters will: append to an existing ticket, reopen a solved one.
func TestIngestAppendsAndReopens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	ingest := func(in agentdesk.Inbound) agentdesk.IngestResult {
		t.Helper()
		var res agentdesk.IngestResult
		err := postgres.InTx(ctx, e.store.DB(), func(tx pgx.Tx) error {
			var err error
			res, err = e.store.Ingest(ctx, tx, e.account, in)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	visitor := agentdesk.Identity{Kind: agentdesk.IdentityVisitor, Value: "visitor-7"}
	first := ingest(agentdesk.Inbound{Identity: visitor, Name: "Dana", Channel: agentdesk.ChannelChat, Body: "hi there", Priority: agentdesk.PriorityHigh})
	if !first.CustomerCreated || !first.TicketCreated || !first.Routable(agentdesk.Inbound{}) {
		t.Fatalf("first: %+v", first)
	}
	second := ingest(agentdesk.Inbound{Identity: visitor, Channel: agentdesk.ChannelChat, Body: "are you there?", TicketID: first.TicketID})
	if second.CustomerCreated || second.TicketCreated || second.TicketID != first.TicketID || second.CustomerID != first.CustomerID || second.Reopened {
		t.Fatalf("second: %+v", second)
	}
	if _, err := e.store.DB().Exec(ctx, `UPDATE tickets SET status = 'solved' WHERE id = $1`, first.TicketID); err != nil {
		t.Fatal(err)
	}
	third := ingest(agentdesk.Inbound{Identity: visitor, Channel: agentdesk.ChannelChat, Body: "one more thing", TicketID: first.TicketID})
	if !third.Reopened {
		t.Fatalf("third did not reopen: %+v", third)
	}
	var status, priority, kinds string
	if err := e.store.DB().QueryRow(ctx, `SELECT status, priority, (SELECT string_agg(kind, ',' ORDER BY id) FROM messages WHERE ticket_id = t.id)
		FROM tickets t WHERE id = $1`, first.TicketID).Scan(&status, &priority, &kinds); err != nil {
		t.Fatal(err)
	}
	if status != "open" || priority != "high" || kinds != "chat,chat,chat" {
		t.Fatalf("ticket %s %s, messages %s", status, priority, kinds)
	}
	err := postgres.InTx(ctx, e.store.DB(), func(tx pgx.Tx) error {
		_, err := e.store.Ingest(ctx, tx, e.account, agentdesk.Inbound{Identity: visitor, Channel: agentdesk.ChannelChat, Body: "x", TicketID: 999999})
		return err
	})
	if k := agentdesk.ErrorKind(err); k != agentdesk.Invalid {
		t.Fatalf("unknown ticket: %v", err)
	}
}

// signedOrder posts an order webhook signed with secret.
func (e *testEnv) signedOrder(t *testing.T, account int64, secret string, body any, sig ...string) response {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(raw)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if len(sig) > 0 {
		signature = sig[0]
	}
	hdrs := []string{}
	if signature != "" {
		hdrs = append(hdrs, SignatureHeader, signature)
	}
	return e.clients["anon"].do(t, "POST", fmt.Sprintf("/api/v1/inbound/order?account=%d", account), raw, hdrs...)
}

func TestOrderWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret, err := e.store.OrderWebhookSecret(t.Context(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	known := e.newCustomer(t, e.clients["agent"], map[string]any{"name": "Known", "lifecycle_stage": "lead",
		"identities": []map[string]string{{"kind": "email", "value": "known@example.com"}}})
	order := map[string]any{
		"external_id": "SO-1001", "amount_cents": 12990, "currency": "EUR", "status": "paid", "placed_at": "2026-06-01T09:30:00Z",
		"customer": map[string]string{"shop_account_id": "cust_77", "email": "KNOWN@example.com", "name": "Known Person"},
		"items":    []map[string]any{{"sku": "TSHIRT-M", "name": "T-shirt", "quantity": 2, "price_cents": 6495}},
	}

	// Bad, missing and foreign signatures: 401, nothing stored.
	before := e.dumpRows(t)
	for name, sig := range map[string]string{"missing": "", "not hex": "sha256=zz", "wrong": "sha256=" + strings.Repeat("ab", 32), "no prefix": "abcdef"} {
		r := e.signedOrder(t, e.account, secret, order, sig)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s signature: %d %s", name, r.status, r.body)
		}
	}
	mustStatus(t, e.signedOrder(t, e.account, "not-the-secret", order), http.StatusUnauthorized)
	mustStatus(t, e.signedOrder(t, 999999, secret, order), http.StatusUnauthorized)
	if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
		t.Fatalf("rejected webhooks stored something:\n%s", d)
	}

	r := e.signedOrder(t, e.account, secret, order)
	mustStatus(t, r, http.StatusCreated)
	var rec orderReceived
	r.json(t, &rec)
	if rec.Order.CustomerID != known.ID || rec.CustomerCreated || !rec.Created || rec.TicketID == 0 {
		t.Fatalf("first delivery: %s", r.body)
	}
	var c agentdesk.Customer
	e.clients["agent"].do(t, "GET", fmt.Sprintf("/api/v1/customers/%d", known.ID), nil).json(t, &c)
	if len(c.Identities) != 2 || c.Identities[1].Kind != "shop" || c.Identities[1].Value != "cust_77" || c.Stage != "customer" || c.Name != "Known" {
		t.Fatalf("customer after order: %+v", c)
	}
	var status, channel, kind string
	if err := e.store.DB().QueryRow(t.Context(), `SELECT t.status, t.channel, m.kind FROM tickets t JOIN messages m ON m.ticket_id = t.id WHERE t.id = $1`,
		rec.TicketID).Scan(&status, &channel, &kind); err != nil {
		t.Fatal(err)
	}
	if status != "closed" || channel != "order" || kind != "order_event" {
		t.Fatalf("order ticket %s %s %s", status, channel, kind)
	}

	orderTicket := rec.TicketID

	// A replay changes nothing.
	before = e.dumpRows(t)
	r = e.signedOrder(t, e.account, secret, order)
	mustStatus(t, r, http.StatusOK)
	r.json(t, &rec)
	if rec.Created || rec.Changed {
		t.Fatalf("replay: %s", r.body)
	}
	if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
		t.Fatalf("replay changed the database:\n%s", d)
	}

	// A status change updates the order and adds an event to the same ticket.
	order["status"] = "refunded"
	r = e.signedOrder(t, e.account, secret, order)
	mustStatus(t, r, http.StatusOK)
	var upd orderReceived
	r.json(t, &upd)
	if !upd.Changed || upd.TicketID != orderTicket || upd.Order.Status != "refunded" {
		t.Fatalf("update: %s", r.body)
	}
	if n := e.count(t, `SELECT count(*) FROM messages WHERE ticket_id = $1 AND kind = 'order_event'`, orderTicket); n != 2 {
		t.Fatalf("%d order events, want 2", n)
	}
	if n := e.count(t, `SELECT count(*) FROM orders`); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}

	// The account may be named by header instead of ?account=.
	raw, _ := json.Marshal(order)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(raw)
	r = e.clients["anon"].do(t, "POST", "/api/v1/inbound/order", raw, SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)), accountHeader, fmt.Sprint(e.account))
	mustStatus(t, r, http.StatusOK)

	// A shop account we have never seen makes a new customer.
	r = e.signedOrder(t, e.account, secret, map[string]any{"external_id": "SO-1002", "amount_cents": 500, "currency": "USD", "placed_at": "2026-06-02T09:30:00Z",
		"customer": map[string]string{"shop_account_id": "cust_88", "name": "Newbie"}})
	mustStatus(t, r, http.StatusCreated)
	r.json(t, &rec)
	if !rec.CustomerCreated || rec.Order.Status != "placed" {
		t.Fatalf("new customer order: %s", r.body)
	}

	// Signed but invalid: 4xx naming the field, nothing stored.
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"bad currency", map[string]any{"external_id": "X", "amount_cents": 1, "currency": "EURO", "placed_at": "2026-06-01T00:00:00Z", "customer": map[string]string{"email": "a@example.com"}}, 422, "currency"},
		{"no customer", map[string]any{"external_id": "X", "amount_cents": 1, "currency": "EUR", "placed_at": "2026-06-01T00:00:00Z"}, 422, "customer"},
		{"bad email", map[string]any{"external_id": "X", "amount_cents": 1, "currency": "EUR", "placed_at": "2026-06-01T00:00:00Z", "customer": map[string]string{"email": "nope"}}, 422, "customer.email"},
		{"unknown field", map[string]any{"external_id": "X", "coupon": "FREE"}, 400, "coupon"},
		{"wrong type", map[string]any{"external_id": "X", "amount_cents": "12.00"}, 400, "amount_cents"},
		{"negative amount", map[string]any{"external_id": "X", "amount_cents": -1, "currency": "EUR", "placed_at": "2026-06-01T00:00:00Z", "customer": map[string]string{"email": "a@example.com"}}, 422, "amount_cents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.dumpRows(t)
			r := e.signedOrder(t, e.account, secret, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if _, f := r.errorKind(t); f != tc.field {
				t.Errorf("field %q, want %q", f, tc.field)
			}
			if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
				t.Errorf("database changed:\n%s", d)
			}
		})
	}
}

// TestConcurrentFirstContacts: the same new person posts many forms and the
// shop delivers the same new order many times, all at once. Exactly one
// customer and one order result; every form gets its ticket.
func TestConcurrentFirstContacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithFormRate(1000))
	secret, err := e.store.OrderWebhookSecret(t.Context(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	statuses := make(chan int, 2*n)
	for i := range n {
		wg.Go(func() {
			statuses <- e.postForm(t, map[string]string{"email": "rush@example.com", "phone": "+14155550199", "message": fmt.Sprint("form ", i)}).status
		})
		wg.Go(func() {
			statuses <- e.signedOrder(t, e.account, secret, map[string]any{"external_id": "RUSH-1", "amount_cents": 100, "currency": "EUR",
				"placed_at": "2026-06-01T00:00:00Z", "customer": map[string]string{"shop_account_id": "rush", "email": "rush@example.com"}}).status
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusAccepted && s != http.StatusCreated && s != http.StatusOK {
			t.Errorf("status %d", s)
		}
	}
	for sql, want := range map[string]int{
		`SELECT count(*) FROM customers`:                           1,
		`SELECT count(*) FROM identities`:                          3,
		`SELECT count(*) FROM orders`:                              1,
		`SELECT count(*) FROM tickets WHERE channel = 'form'`:      n,
		`SELECT count(*) FROM messages WHERE kind = 'order_event'`: 1,
		`SELECT count(DISTINCT customer_id) FROM tickets`:          1,
	} {
		if got := e.count(t, sql); got != want {
			t.Errorf("%s = %d, want %d", sql, got, want)
		}
	}
}
