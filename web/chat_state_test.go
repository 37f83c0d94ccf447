package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"agentdesk/web/hub"
)

// reconnect opens a new websocket for v and resumes its visitor stream from
// lastSeq.
func (v *visitor) reconnect(ct *chatTest, lastSeq int64) *websocket.Conn {
	t := v.t
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(ct.wsURL("/ws/customer?token="+url.QueryEscape(v.token)), http.Header{"Origin": {shopOrigin}})
	if err != nil {
		t.Fatalf("visitor websocket: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r", "data": map[string]any{"streams": []any{ //nolint:errcheck
		map[string]any{"stream": hub.VisitorStream(v.id), "last_seq": lastSeq}}}})
	return ws
}

// nextFrame reads the next frame that is not a reply.
func nextFrame(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	for {
		var f map[string]any
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("read: %v", err)
		}
		if f["type"] != "ack" {
			return f
		}
	}
}

// resyncState resumes v's stream from lastSeq and returns the chat.state
// that must follow the resync at once.
func resyncState(t *testing.T, ct *chatTest, v *visitor, lastSeq int64) map[string]any {
	t.Helper()
	ws := v.reconnect(ct, lastSeq)
	if f := nextFrame(t, ws); f["type"] != "resync" || f["stream"] != hub.VisitorStream(v.id) {
		t.Fatalf("after resuming from a pruned seq: %v, want resync", f)
	}
	f := nextFrame(t, ws)
	if f["type"] != ChatState || f["stream"] != hub.VisitorStream(v.id) {
		t.Fatalf("after resync: %v, want %s", f, ChatState)
	}
	if _, ok := f["seq"]; ok {
		t.Errorf("chat.state has a seq: %v", f)
	}
	d, _ := f["data"].(map[string]any)
	return d
}

// A widget whose visitor stream resumes from a seq older than the retention
// gets "resync" and then, at once, chat.state: the chat as it stands (queued
// with its position, or active with the agent's name and the messages,
// those sent while it was away included), or null without a chat.
func TestChatStateAfterResync(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	agent := ct.clients["agent"]
	prune := func() {
		t.Helper()
		if _, err := hub.New(ct.store.DB(), nil, hub.Config{}, nil).Prune(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	// No chat yet: the widget shows the form.
	idle := ct.visitor(t, "")
	idle.connect(ct)

	carla := ct.visitor(t, "")
	carla.connect(ct)
	started := carla.startChat(map[string]any{"name": "Carla", "email": "carla@example.org", "body": "Where is my order?"})
	readFrame(t, carla.ws, ChatQueued)

	// Waiting: position and estimated wait.
	prune()
	if d := resyncState(t, ct, carla, 0); d["status"] != "queued" || d["position"] != float64(1) || d["ticket_id"] != float64(started.TicketID) {
		t.Errorf("queued chat.state %v", d)
	}

	// Joined, messages both ways; then the widget goes away.
	taskID := ct.chatTask(t, started.TicketID)
	wantStatus(t, "available", agent.do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	if _, err := ct.eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "accept", agent.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/accept", taskID), nil), http.StatusOK)
	readFrame(t, carla.ws, ChatAgentJoined)
	carla.ws.WriteJSON(map[string]any{"type": "chat.send", "id": "s1", "data": map[string]any{"body": "Hello?", "client_msg_id": "m1"}}) //nolint:errcheck
	f := readMessage(t, carla.ws, "Hello?")
	lastSeq := int64(f["seq"].(float64))
	carla.ws.Close()
	path := fmt.Sprintf("/api/v1/tickets/%d/messages", started.TicketID)
	wantStatus(t, "reply", agent.do(t, "POST", path, map[string]any{"direction": "out", "body": "It ships today."}), http.StatusCreated)
	wantStatus(t, "note", agent.do(t, "POST", path, map[string]any{"kind": "note", "body": "VIP customer"}), http.StatusCreated)
	prune()

	d := resyncState(t, ct, carla, lastSeq)
	if d["status"] != "active" || d["agent_name"] != "agent" || d["ticket_id"] != float64(started.TicketID) {
		t.Errorf("active chat.state %v", d)
	}
	var bodies []string
	msgs, _ := d["messages"].([]any)
	for _, m := range msgs {
		bodies = append(bodies, m.(map[string]any)["body"].(string))
	}
	if fmt.Sprint(bodies) != "[Where is my order? Hello? It ships today.]" {
		t.Errorf("chat.state messages %q (no internal note, oldest first)", bodies)
	}

	// Without a chat: null.
	// (something the visitor missed, pruned since)
	err := pgx.BeginFunc(ctx, ct.store.DB(), func(tx pgx.Tx) error {
		return hub.Publish(ctx, tx, hub.Event{AccountID: ct.account, Stream: hub.VisitorStream(idle.id), Type: "x", Data: map[string]any{}})
	})
	if err != nil {
		t.Fatal(err)
	}
	prune()
	ws := idle.reconnect(ct, 0)
	if f := nextFrame(t, ws); f["type"] != "resync" {
		t.Fatalf("idle visitor: %v, want resync", f)
	}
	if f := nextFrame(t, ws); f["type"] != ChatState || f["data"] != nil {
		t.Errorf("idle visitor after resync: %v, want chat.state null", f)
	}
}
