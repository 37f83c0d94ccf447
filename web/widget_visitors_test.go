package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

// wsCall sends a client message and returns its reply (ack or error).
func wsCall(t *testing.T, ws *websocket.Conn, typ, id string, data any) map[string]any {
	t.Helper()
	if err := ws.WriteJSON(map[string]any{"type": typ, "id": id, "data": data}); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	for {
		var f map[string]any
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("reply to %s: %v", typ, err)
		}
		if f["id"] == id && (f["type"] == "ack" || f["type"] == "error") {
			return f
		}
	}
}

// chatSnapshot is everything stored about one chat that another visitor
// must not be able to change.
type chatSnapshot struct {
	Messages      string // id:direction:body, oldest first
	Status        string
	CSAT          *int
	EndedAt       *time.Time
	Identities    string // the customer's
	Attributes    string // the customer's
	VisitorEvents int    // events on the chat visitor's stream
	TicketEvents  int
}

func snapshotChat(t *testing.T, ct *chatTest, ticketID int64, visitorID string) chatSnapshot {
	t.Helper()
	ctx := context.Background()
	db := ct.store.DB()
	var s chatSnapshot
	var customerID int64
	err := db.QueryRow(ctx, `SELECT status, csat_rating, customer_id FROM tickets WHERE account_id = $1 AND id = $2`, ct.account, ticketID).Scan(&s.Status, &s.CSAT, &customerID)
	if err != nil {
		t.Fatal(err)
	}
	for q, dst := range map[string]*string{
		`SELECT coalesce(string_agg(id || ':' || direction || ':' || body, '|' ORDER BY id), '') FROM messages WHERE account_id = $1 AND ticket_id = $2`: &s.Messages,
	} {
		if err := db.QueryRow(ctx, q, ct.account, ticketID).Scan(dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.QueryRow(ctx, `SELECT coalesce(string_agg(kind || ':' || value, '|' ORDER BY id), '') FROM identities WHERE account_id = $1 AND customer_id = $2`, ct.account, customerID).Scan(&s.Identities); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT attributes::text FROM customers WHERE account_id = $1 AND id = $2`, ct.account, customerID).Scan(&s.Attributes); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT ended_at FROM chats WHERE account_id = $1 AND ticket_id = $2`, ct.account, ticketID).Scan(&s.EndedAt); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(ctx, `SELECT count(*) FROM stream_events WHERE account_id = $1 AND stream = $2`, ct.account, hub.VisitorStream(visitorID)).Scan(&s.VisitorEvents) //nolint:errcheck
	db.QueryRow(ctx, `SELECT count(*) FROM stream_events WHERE account_id = $1 AND stream = $2`, ct.account, hub.TicketStream(ticketID)).Scan(&s.TicketEvents)    //nolint:errcheck
	return s
}

// A visitor who types another customer's email into the pre-chat form can
// neither read, write to nor end that customer's open chat, over any widget
// endpoint or websocket message, before or after starting a chat of its
// own; its chat stays on a customer of its own with the address as an
// unverified suggestion; nothing stored about the first chat changes.
func TestVisitorCannotReachAnotherCustomersChat(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	db := ct.store.DB()
	agent := ct.clients["agent"]

	// Carla chats with an agent.
	carla := ct.visitor(t, "")
	carla.connect(ct)
	a := carla.startChat(map[string]any{"name": "Carla", "email": "carla@example.org", "body": "My order 1234 is late"})
	var taskID, carlaCustomer int64
	db.QueryRow(ctx, `SELECT task_id FROM chats WHERE ticket_id = $1`, a.TicketID).Scan(&taskID)       //nolint:errcheck
	db.QueryRow(ctx, `SELECT customer_id FROM tickets WHERE id = $1`, a.TicketID).Scan(&carlaCustomer) //nolint:errcheck
	wantStatus(t, "available", agent.do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	if _, err := ct.eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "accept", agent.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/accept", taskID), nil), http.StatusOK)
	wantStatus(t, "reply", agent.do(t, "POST", fmt.Sprintf("/api/v1/tickets/%d/messages", a.TicketID),
		map[string]any{"direction": "out", "body": "Carla, your parcel is at the depot."}), http.StatusCreated)
	readMessage(t, carla.ws, "Carla, your parcel is at the depot.")
	before := snapshotChat(t, ct, a.TicketID, carla.id)

	mallory := ct.visitor(t, "")
	mallory.connect(ct)
	ws := mallory.ws
	notFound := func(name string, f map[string]any) {
		t.Helper()
		if f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.NotFound) {
			t.Errorf("%s: %v, want error not_found", name, f)
		}
	}
	forbidden := func(name string, f map[string]any) {
		t.Helper()
		if f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
			t.Errorf("%s: %v, want error forbidden", name, f)
		}
	}
	// Every websocket message type aimed at Carla's chat.
	attackWS := func(phase string) {
		t.Helper()
		notFound(phase+" chat.send into her ticket", wsCall(t, ws, "chat.send", "s", map[string]any{"ticket_id": a.TicketID, "body": "I am Carla", "client_msg_id": "x1"}))
		notFound(phase+" typing in her ticket", wsCall(t, ws, "typing", "ty", map[string]any{"ticket_id": a.TicketID, "typing": true}))
		for _, s := range []string{hub.VisitorStream(carla.id), hub.TaskStream(taskID), hub.TicketStream(a.TicketID), hub.AccountStream(ct.account), hub.SupervisorStream(ct.account)} {
			forbidden(phase+" resume "+s, wsCall(t, ws, "resume", "r-"+s, map[string]any{"streams": []any{map[string]any{"stream": s, "last_seq": 0}}}))
		}
		forbidden(phase+" presence.set", wsCall(t, ws, "presence.set", "p", map[string]any{"state": "available"}))
		forbidden(phase+" offer.accept", wsCall(t, ws, "offer.accept", "oa", map[string]any{"offer_id": taskID}))
		forbidden(phase+" offer.reject", wsCall(t, ws, "offer.reject", "or", map[string]any{"offer_id": taskID}))
		// Own subscriptions only: a no-op.
		if f := wsCall(t, ws, "unsubscribe", "u", map[string]any{"stream": hub.VisitorStream(carla.id)}); f["type"] != "ack" {
			t.Errorf("%s unsubscribe: %v", phase, f)
		}
	}

	// Before Mallory has a chat: nothing to reach.
	if mallory.session.Chat != nil || mallory.session.Email != "" {
		t.Errorf("new visitor's session %+v", mallory.session)
	}
	attackWS("without a chat:")
	notFound("without a chat: chat.send to the open chat", wsCall(t, ws, "chat.send", "s0", map[string]any{"body": "hello", "client_msg_id": "x0"}))
	for _, c := range []struct {
		path string
		body any
	}{{"/chat/end", map[string]any{}}, {"/chat/rating", map[string]any{"rating": 1, "comment": "bad"}}, {"/chat/transcript", map[string]any{"email": "carla@example.org"}}} {
		if res := mallory.post(c.path, c.body); res.status != http.StatusNotFound {
			t.Errorf("without a chat: %s: HTTP %d %s, want 404", c.path, res.status, res.body)
		}
	}

	// Mallory types Carla's address into the pre-chat form.
	res := mallory.post("/chat", map[string]any{"name": "Carla", "email": "carla@example.org", "body": "Hi, it's me"})
	wantStatus(t, "mallory starts", res, http.StatusCreated)
	var m chatStarted
	res.json(t, &m)
	var malloryCustomer int64
	var attrs map[string]any
	db.QueryRow(ctx, `SELECT t.customer_id, c.attributes FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.id = $1`, m.TicketID).Scan(&malloryCustomer, &attrs) //nolint:errcheck
	if malloryCustomer == carlaCustomer || m.TicketID == a.TicketID {
		t.Fatalf("the second visitor's chat is on the first customer (customer %d, ticket %d)", malloryCustomer, m.TicketID)
	}
	if attrs["unverified_email"] != "carla@example.org" || attrs["email_verified"] != "false" || attrs["suggested_customer_id"] != fmt.Sprint(carlaCustomer) {
		t.Errorf("the agent's suggestion on the new customer: %v", attrs)
	}
	// The agent's desk reads it with the customer.
	res = agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d", malloryCustomer), nil)
	wantStatus(t, "the new customer", res, http.StatusOK)
	var shown agentdesk.Customer
	res.json(t, &shown)
	if shown.Attributes["unverified_email"] != "carla@example.org" || shown.Attributes["suggested_customer_id"] != fmt.Sprint(carlaCustomer) || len(shown.Identities) != 1 || shown.Identities[0].Kind != agentdesk.IdentityVisitor {
		t.Errorf("the new customer as the desk sees it: %+v", shown)
	}
	var firstMeta map[string]any
	db.QueryRow(ctx, `SELECT meta FROM messages WHERE ticket_id = $1 ORDER BY id LIMIT 1`, m.TicketID).Scan(&firstMeta) //nolint:errcheck
	if firstMeta["email_verified"] != false || firstMeta["suggested_customer_id"] != float64(carlaCustomer) {
		t.Errorf("first message meta %v", firstMeta)
	}

	attackWS("with a chat:")
	// chat.send without a ticket goes to Mallory's own chat.
	if f := wsCall(t, ws, "chat.send", "own", map[string]any{"body": "still me", "client_msg_id": "x2"}); f["type"] != "ack" || dataOf(f)["ticket_id"] != float64(m.TicketID) {
		t.Errorf("chat.send to the open chat: %v, want ack on ticket %d", f, m.TicketID)
	}
	// Her session shows her own chat only.
	back := ct.visitor(t, mallory.id)
	if back.session.Chat == nil || back.session.Chat.TicketID != m.TicketID {
		t.Fatalf("returning second visitor's chat %+v", back.session.Chat)
	}
	for _, msg := range back.session.Chat.Messages {
		if msg.TicketID != m.TicketID || strings.Contains(msg.Body, "depot") || strings.Contains(msg.Body, "1234") {
			t.Errorf("the second visitor sees %+v", msg)
		}
	}
	// The transcript goes to the address she started with, and holds her chat only.
	if res := mallory.post("/chat/transcript", map[string]any{"email": "mallory@example.net"}); res.status != http.StatusUnprocessableEntity {
		t.Errorf("transcript to another address: HTTP %d", res.status)
	}
	wantStatus(t, "transcript", mallory.post("/chat/transcript", map[string]any{"email": "carla@example.org"}), http.StatusAccepted)
	var transcripts int
	var transcript string
	db.QueryRow(ctx, `SELECT count(*), coalesce(max(body), '') FROM messages WHERE ticket_id = $1 AND meta ? 'transcript_to'`, m.TicketID).Scan(&transcripts, &transcript) //nolint:errcheck
	if transcripts != 1 || strings.Contains(transcript, "depot") || strings.Contains(transcript, "1234") || !strings.Contains(transcript, "still me") {
		t.Errorf("transcript (%d):\n%s", transcripts, transcript)
	}
	// Rating and ending touch her own chat.
	wantStatus(t, "rate", mallory.post("/chat/rating", map[string]any{"rating": 1, "comment": "x"}), http.StatusNoContent)
	wantStatus(t, "end", mallory.post("/chat/end", map[string]any{}), http.StatusNoContent)
	attackWS("after ending:")
	// A message left while offline with Carla's address goes to Carla's
	// record as an email (answered by email), without linking the visitor.
	wantStatus(t, "leave message", mallory.post("/messages", map[string]any{"name": "Carla", "email": "carla@example.org", "body": "Call me"}), http.StatusCreated)

	var ended *time.Time
	var rated *int
	db.QueryRow(ctx, `SELECT c.ended_at, t.csat_rating FROM chats c JOIN tickets t ON t.id = c.ticket_id WHERE c.ticket_id = $1`, m.TicketID).Scan(&ended, &rated) //nolint:errcheck
	if ended == nil || rated == nil || *rated != 1 {
		t.Errorf("the second visitor's own chat: ended %v, rated %v", ended, rated)
	}
	var linked int
	db.QueryRow(ctx, `SELECT count(*) FROM identities WHERE customer_id = $1 AND kind = 'visitor' AND value = $2`, carlaCustomer, mallory.id).Scan(&linked) //nolint:errcheck
	if linked != 0 {
		t.Error("the second visitor was linked to the first customer")
	}

	// Nothing stored about Carla's chat changed, and she still chats.
	if after := snapshotChat(t, ct, a.TicketID, carla.id); after != before {
		t.Errorf("Carla's chat changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if before.EndedAt != nil || before.CSAT != nil {
		t.Errorf("Carla's chat %+v", before)
	}
	if f := wsCall(t, carla.ws, "chat.send", "c1", map[string]any{"body": "Thanks!", "client_msg_id": "c1"}); f["type"] != "ack" || dataOf(f)["ticket_id"] != float64(a.TicketID) {
		t.Errorf("Carla's own send: %v", f)
	}
}
