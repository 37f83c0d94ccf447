package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Access changes. A connection is authorised with the rights its agent had
// when it opened; when an agent's teams, role or active flag change, or a
// session of theirs ends, the change's writer publishes an event on the
// agent's access stream ("access:<agent_id>"), in the change's own
// transaction. Every hub follows that stream for each agent connection it
// holds (an internal subscription: its events are never sent to the
// client, and no client may follow it), so the change reaches the agent's
// connections in every process through the same durable path as any event.
// The connection then reloads the agent, drops the streams it may no longer
// follow, and is closed when the agent is deactivated or its session is
// gone. An API token's connections follow the token's access stream
// ("access:token-<id>") the same way and are closed when it is revoked.
//
// Who may see a ticket changes with the ticket too (another team, another
// assignee). Its writer then publishes access.changed on the ticket's own
// stream, before the rest of the change: each hub holds every follower of
// that stream at that event until the connection's rights are re-checked,
// so one that may no longer see the ticket gets the forbidden error frame
// and nothing more of it, and the others get the event and what follows.
//
// A session also ends by itself: each connection a session opened is
// scheduled with the hub's expiries (expiry.go: one goroutine and a heap
// for all connections, not a timer each), which re-read the session when
// it expires (one renewed meanwhile schedules the connection again) and
// close the connection when it has expired.

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

// TokenAccessStream is where the revocation of an API token is announced.
// Only hubs follow it, for the connections the token opened.
func TokenAccessStream(tokenID int64) string { return fmt.Sprintf("access:token-%d", tokenID) }

// PublishTokenRevoked tells every hub, once tx commits, that an API token
// was revoked: the connections it opened are closed.
func PublishTokenRevoked(ctx context.Context, tx pgx.Tx, accountID, tokenID int64) error {
	return Publish(ctx, tx, Event{AccountID: accountID, Stream: TokenAccessStream(tokenID), Type: AccessChanged, Data: map[string]int64{"token_id": tokenID}})
}

// PublishTicketAccessChanged tells every hub, once tx commits, that who may
// see a ticket may have changed: the followers of its stream are
// re-authorised before they get this event or any after it. Publish it
// before the change's other events on the ticket's stream.
func PublishTicketAccessChanged(ctx context.Context, tx pgx.Tx, accountID, ticketID int64) error {
	return Publish(ctx, tx, Event{AccountID: accountID, Stream: TicketStream(ticketID), Type: AccessChanged, Data: map[string]int64{"ticket_id": ticketID}})
}

type sessionKey struct{}

type session struct {
	token   string
	expires time.Time
}

// WithSession records in ctx the session token that authenticated the
// request and when it expires, so a websocket opened with it is closed when
// the session ends or expires.
func WithSession(ctx context.Context, token string, expires time.Time) context.Context {
	return context.WithValue(ctx, sessionKey{}, session{token, expires})
}

func sessionOf(ctx context.Context) (string, time.Time) {
	s, _ := ctx.Value(sessionKey{}).(session)
	return s.token, s.expires
}

// followAccess subscribes c, internally, to its agent's or API token's
// access stream, and schedules the re-check at its session's expiry.
func (h *Hub) followAccess(c *conn) {
	if c.p.Visitor != nil || h.actions == nil {
		return
	}
	var name string
	switch {
	case c.p.Actor.IsAgent():
		name = AccessStream(c.p.Actor.AgentID)
	case c.p.Actor.TokenID != 0:
		name = TokenAccessStream(c.p.Actor.TokenID)
	default:
		return
	}
	c.armExpiry(c.p.Expires)
	key := streamKey{c.p.Actor.AccountID, name}
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

// armExpiry (re)schedules the re-check of c when its session expires (at
// is zero for connections without one) with the hub's expiries. The
// re-check reads the session again: a renewed session schedules c again,
// an expired one closes it.
func (c *conn) armExpiry(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.h.expiries.set(c, at)
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
	held := c.heldSubs()
	if c.p.Visitor == nil && h.actions != nil {
		if !c.reloadActor(ctx) {
			return
		}
	}
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
	c.release(held)
}

// reloadActor reads c's agent (or API token) again; false when c was
// closed for it. Called with c.op held.
func (c *conn) reloadActor(ctx context.Context) bool {
	h := c.h
	var a agentdesk.Actor
	var expires time.Time
	var err error
	if c.p.Actor.IsAgent() {
		a, expires, err = h.actions.Agent(ctx, c.p.Actor.AccountID, c.p.Actor.AgentID, c.p.Session)
	} else {
		a, err = h.actions.Token(ctx, c.p.Actor.AccountID, c.p.Actor.TokenID)
	}
	switch kind := agentdesk.ErrorKind(err); {
	case err == nil:
	case kind == agentdesk.Unauthenticated || kind == agentdesk.NotFound:
		c.closeWith(CloseUnauthorized, "signed out, session expired, token revoked or deactivated; sign in again")
		return false
	default:
		// Rights unknown: fail closed. The client reconnects and its
		// resume is authorised afresh.
		h.log.Warn("hub: re-check of an agent's rights", append(logAttrs(c.p), "err", err)...)
		c.closeWith(closeGoingAway, "reconnect and resume")
		return false
	}
	c.p.Actor = a
	if c.p.Session != "" {
		// Always re-armed: the expiry may be what woke this check (it
		// left the heap then), and the session may have been renewed.
		c.p.Expires = expires
		c.armExpiry(expires)
	}
	return true
}

// heldSubs is where c's streams are held for a re-check. It is read before
// the re-check reads any rights, so those reads see every change whose
// event caused a hold. Called with c.op held.
func (c *conn) heldSubs() map[*stream]int64 {
	var held map[*stream]int64
	for _, s := range c.subs {
		s.mu.Lock()
		if i := s.subIndex(c); i >= 0 && s.subs[i].held != 0 {
			if held == nil {
				held = map[*stream]int64{}
			}
			held[s] = s.subs[i].held
		}
		s.mu.Unlock()
	}
	return held
}

// release lets the streams held at the start of a re-check that passed go
// on. Dropped streams have no subscription left to release.
func (c *conn) release(held map[*stream]int64) {
	for s, seq := range held {
		s.mu.Lock()
		if i := s.subIndex(c); i >= 0 {
			sb := s.subs[i]
			if sb.held == seq {
				sb.held = 0
			}
			sb.cleared = max(sb.cleared, seq)
		}
		s.mu.Unlock()
		c.h.markDirty(s)
	}
}
