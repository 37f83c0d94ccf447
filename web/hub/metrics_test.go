package hub

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"agentdesk/agentdesk"
)

func TestCollectorExportsCounters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	c := srv.dialAgent(t, 10, "agent")
	c.request("resume", nil)
	c.readUntil("subscribed", "")
	reg := prometheus.NewRegistry()
	if err := reg.Register(srv.hub.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if m.Gauge != nil {
			got[mf.GetName()] = m.GetGauge().GetValue()
		} else {
			got[mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	if got["agentdesk_ws_connections"] != 1 {
		t.Errorf("connections = %v, want 1 (%v)", got["agentdesk_ws_connections"], got)
	}
	if _, ok := got["agentdesk_ws_slow_closed_total"]; !ok || len(got) != 8 {
		t.Errorf("metrics %v", got)
	}
}

// A visitor whose widget token expires while connected is closed with 4001
// at its next message.
func TestExpiredWidgetTokenClosesWith4001(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	exp := time.Now().Add(1100 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	tok := SignWidgetToken(testSecret, WidgetToken{AccountID: e.account, WidgetID: "w1", VisitorID: "v1", Expires: exp})
	c := srv.dial(t, "/ws/customer?token="+tok, http.Header{"Origin": {"https://shop.example"}})
	if f := c.request("ping", nil); f.Type != "ack" {
		t.Fatalf("ping: %+v", f)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond) // waits for the expiry; asserts no duration
	c.send(map[string]any{"type": "ping"})
	c.wantClosedWith(t, CloseUnauthorized)
}

// Server pings keep a reading client connected past the pong deadline; a
// client that answers nothing is dropped once it passes.
func TestPingPongDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{PingInterval: 50 * time.Millisecond, PongWait: 400 * time.Millisecond})
	live := srv.dialAgent(t, 10, "agent")
	live.request("resume", nil)
	live.readUntil("subscribed", "")
	mute := srv.dialAgent(t, 11, "agent") // never reads, so never answers a ping
	go func() {
		time.Sleep(time.Second) // several pong deadlines later
		e.publish("agent:10", "later", nil)
	}()
	if f := live.readUntil("later", ""); f.Seq != 1 { // the reads answered the pings meanwhile
		t.Errorf("seq %d", f.Seq)
	}
	err := mute.readToEnd()
	// Hung up: a close error, or the client's own pong reply failing on the
	// closed socket — anything but our 20 s read deadline.
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Errorf("mute client still connected: %v", err)
	}
}

// The rights a connection opens with were read before the hub first reads
// the agent's access stream. A change committed in between (here: before
// the connection, as the auth's read was) is behind that first read's
// head, so the hub re-checks once: the deactivated agent's connection is
// closed with 4001 instead of living on with the rights it came with.
func TestAccessChangeBeforeFirstReadIsNotMissed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	e.actions.mu.Lock()
	e.actions.deactivated = map[int64]bool{21: true}
	e.actions.mu.Unlock()
	e.publish(AccessStream(21), AccessChanged, map[string]int64{"agent_id": 21})

	c := srv.dialAgent(t, 21, agentdesk.RoleAgent)
	c.wantClosedWith(t, CloseUnauthorized)

	// An agent whose access stream never changed opens as before.
	ok := srv.dialAgent(t, 22, agentdesk.RoleAgent)
	if f := ok.request("ping", nil); f.Type != "ack" {
		t.Fatalf("ping: %+v", f)
	}
}
