package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
)

// The email channel as serve wires it: a support address added over REST
// takes mail at once; a desk following the ticket on a websocket sees the
// customer's mail arrive, the agent's reply queued and then its delivery
// state change when the relay accepts it (River job, hub events).
func TestEmailLiveOnTheDesk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs SMTP servers")
	}
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fx := newAccountDB(t, "Live Mail Co", "live.test", 10)
	dbURL, db, store, acct := fx.url, fx.db, fx.store, fx.acct
	token := fx.token(t, "desk", agentdesk.RoleAdmin)
	relay := newRelaySink(t)
	smtpAddr := freeAddr(t)
	base := serveInProcess(t, dbURL, store, channelConfig{disableRouting: true, smtpAddr: smtpAddr, smtpHostname: "live.test",
		emailSecret: strings.Repeat("s", 32), relay: relayFlags{addr: relay.addr, security: "none"}}, nil, nil)
	addr := strings.TrimPrefix(base, "http://")
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, out
	}
	send := func(raw string) error {
		sc, err := smtp.Dial(smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		return sc.SendMail("dana@customer.test", []string{"help@live.test"}, strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n")))
	}

	first := "From: Dana <dana@customer.test>\nTo: help@live.test\nSubject: Where is my parcel\nMessage-ID: <live-1@customer.test>\n\nIt has not arrived.\n"
	if err := send(first); err == nil {
		t.Fatal("mail for an address nobody configured was accepted")
	}
	if status, body := call("POST", "/api/v1/email/mailboxes", map[string]any{"address": "help@live.test", "display_name": "Help"}); status != 201 {
		t.Fatalf("add support address: %d %s", status, body)
	}
	if err := send(first); err != nil {
		t.Fatalf("mail after the address was added: %v", err)
	}
	var ticketID int64
	if err := db.QueryRow(ctx, `SELECT ticket_id FROM messages WHERE account_id = $1`, acct.ID).Scan(&ticketID); err != nil {
		t.Fatal(err)
	}
	// The ticket the mail opened is announced to the lists of new tickets
	// (the supervisors' among them), in the mail's own transaction.
	var created []string
	rows, err := db.Query(ctx, `SELECT stream FROM stream_events WHERE account_id = $1 AND type = 'ticket.created' AND (data->>'id')::bigint = $2 ORDER BY stream`, acct.ID, ticketID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		created = append(created, s)
	}
	if rows.Err() != nil || !slices.Contains(created, fmt.Sprintf("supervisor:%d", acct.ID)) {
		t.Fatalf("ticket.created of the mail's ticket went to %v (%v), want the supervisors' stream among them", created, rows.Err())
	}

	// A desk with the ticket open.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/supervisor", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	stream := fmt.Sprintf("ticket:%d", ticketID)
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r1", "data": map[string]any{"streams": []map[string]any{{"stream": stream}}}}) //nolint:errcheck
	type frame struct {
		Type   string         `json:"type"`
		Stream string         `json:"stream"`
		Data   map[string]any `json:"data"`
	}
	next := func(want string) frame {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck
		for {
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if f.Type == want && (f.Stream == stream || f.Stream == "") {
				return f
			}
		}
	}
	next("subscribed")

	// The customer writes again: the desk sees it without reloading.
	if err := send("From: Dana <dana@customer.test>\nTo: help@live.test\nSubject: Re: Where is my parcel\nMessage-ID: <live-2@customer.test>\nIn-Reply-To: <live-1@customer.test>\n\nStill nothing.\n"); err != nil {
		t.Fatal(err)
	}
	if f := next("message.created"); f.Data["body"] != "Still nothing." || f.Data["direction"] != "in" {
		t.Errorf("message.created %v", f.Data)
	}
	if f := next("ticket.updated"); f.Data["id"] != float64(ticketID) {
		t.Errorf("ticket.updated %v", f.Data)
	}

	// The agent answers: queued, then sent, on the same message.
	status, body := call("POST", fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID), map[string]any{"direction": "out", "body": "It ships today."})
	if status != 201 {
		t.Fatalf("reply: %d %s", status, body)
	}
	var reply agentdesk.Message
	json.Unmarshal(body, &reply) //nolint:errcheck
	delivery := func(m map[string]any) map[string]any {
		meta, _ := m["meta"].(map[string]any)
		em, _ := meta["email"].(map[string]any)
		d, _ := em["delivery"].(map[string]any)
		return d
	}
	if f := next("message.created"); f.Data["id"] != float64(reply.ID) || delivery(f.Data)["state"] != "queued" {
		t.Errorf("reply message.created %v", f.Data)
	}
	f := next("message.updated")
	if d := delivery(f.Data); f.Data["id"] != float64(reply.ID) || d["state"] != "sent" || !strings.HasPrefix(fmt.Sprint(d["answer"]), "250") {
		t.Errorf("message.updated %v", f.Data)
	}
	relay.mu.Lock()
	n := len(relay.got)
	relay.mu.Unlock()
	if n != 1 {
		t.Errorf("relay got %d mails", n)
	}
}
