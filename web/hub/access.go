package hub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Access changes. A connection is authorised with the rights its agent had
// when it opened; when an agent's teams, role or active flag change, or a
// session of theirs ends, the change's writer publishes an event on the
// agent's access stream ("access:<agent_id>"). Every hub follows that stream
// for each agent connection it holds (an internal subscription: its events
// are never sent to the client, and no client may follow it), so the change
// reaches the agent's connections in every process through the same durable
// path as any event. The connection then reloads the agent, drops the
// streams it may no longer follow, and is closed when the agent is
// deactivated or its session is gone.

// AccessChanged is the type of the event on an agent's access stream.
const AccessChanged = "access.changed"

// AccessStream is where changes to an agent's rights are announced. Only
// hubs follow it.
func AccessStream(agentID int64) string { return fmt.Sprintf("access:%d", agentID) }

// PublishAccessChanged tells every hub, once tx commits, that the rights
// of the agent changed: their open connections re-check what they follow.
func PublishAccessChanged(ctx context.Context, tx pgx.Tx, accountID, agentID int64) error {
	return Publish(ctx, tx, Event{AccountID: accountID, Stream: AccessStream(agentID), Type: AccessChanged, Data: map[string]int64{"agent_id": agentID}})
}

type sessionKey struct{}

// WithSession records in ctx the session token that authenticated the
// request, so a websocket opened with it is closed when the session ends.
func WithSession(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, sessionKey{}, token)
}

func sessionOf(ctx context.Context) string {
	s, _ := ctx.Value(sessionKey{}).(string)
	return s
}

// followAccess subscribes c, internally, to its agent's access stream.
func (h *Hub) followAccess(c *conn) {
	if c.p.Visitor != nil || !c.p.Actor.IsAgent() || h.actions == nil {
		return
	}
	key := streamKey{c.p.Actor.AccountID, AccessStream(c.p.Actor.AgentID)}
	h.mu.Lock()
	s := h.streams[key]
	if s == nil {
		s = &stream{key: key, known: -1}
		h.streams[key] = s
	}
	s.mu.Lock()
	s.subs = append(s.subs, &sub{c: c, pending: true, want: -1, internal: true})
	s.mu.Unlock()
	h.mu.Unlock()
	c.access = s
	h.markDirty(s)
}

// recheck asks for a re-check of c's rights; checks run one at a time, and
// a request during a check runs one more after it.
func (c *conn) recheck() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.checking {
		c.checkAgain = true
		c.mu.Unlock()
		return
	}
	c.checking = true
	c.mu.Unlock()
	go func() {
		for {
			c.recheckOnce()
			c.mu.Lock()
			if !c.checkAgain || c.closed {
				c.checking, c.checkAgain = false, false
				c.mu.Unlock()
				return
			}
			c.checkAgain = false
			c.mu.Unlock()
		}
	}()
}

// recheckOnce reloads the agent and re-authorises every stream c follows.
// It holds c.op, so no client message is handled meanwhile and the reader
// sees the new principal on its next message.
func (c *conn) recheckOnce() {
	c.op.Lock()
	defer c.op.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), messageTimeout)
	defer cancel()
	h := c.h
	a, err := h.actions.Agent(ctx, c.p.Actor.AccountID, c.p.Actor.AgentID, c.p.Session)
	switch kind := agentdesk.ErrorKind(err); {
	case err == nil:
	case kind == agentdesk.Unauthenticated || kind == agentdesk.NotFound:
		c.closeWith(CloseUnauthorized, "signed out or deactivated; sign in again")
		return
	default:
		// Rights unknown: fail closed. The client reconnects and its
		// resume is authorised afresh.
		h.log.Warn("hub: re-check of an agent's rights", append(logAttrs(c.p), "err", err)...)
		c.closeWith(closeGoingAway, "reconnect and resume")
		return
	}
	c.p.Actor = a
	for i := 0; i < len(c.subs); {
		s := c.subs[i]
		err := h.canSubscribe(ctx, c.p, s.key.name)
		switch kind := agentdesk.ErrorKind(err); {
		case err == nil:
			i++
			continue
		case kind != agentdesk.Forbidden && kind != agentdesk.NotFound && kind != agentdesk.Invalid:
			h.log.Warn("hub: re-check of a followed stream", append(logAttrs(c.p), "stream", s.key.name, "err", err)...)
			c.closeWith(closeGoingAway, "reconnect and resume")
			return
		}
		h.unsubscribe(c, s)
		c.subs = append(c.subs[:i], c.subs[i+1:]...)
		h.stats.ErrorsReturned.Add(1)
		raw, _ := json.Marshal(errorBody{Code: string(agentdesk.Forbidden), Field: "stream", Message: fmt.Sprintf("you can no longer follow %s", s.key.name)})
		c.send(marshalFrame(envelope{Type: "error", Stream: s.key.name, Data: raw}))
	}
}
