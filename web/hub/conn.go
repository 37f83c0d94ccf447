package hub

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Close codes sent to clients. 4xxx codes are ours; PROTOCOL.md lists them.
const (
	closeGoingAway     = websocket.CloseGoingAway     // 1001: server shutting down, reconnect and resume
	closeTooBig        = websocket.CloseMessageTooBig // 1009: a frame over the hard read limit
	CloseUnauthorized  = 4001                         // token expired or revoked, signed out or deactivated; get a new one
	CloseSlowConsumer  = 4008                         // send queue overflowed; reconnect and resume
	maxSubscriptions   = 50                           // streams one connection may follow
	hardLimitFactor    = 4                            // frames up to this × MaxMessageBytes get an error frame
	closeFrameDeadline = time.Second
)

// item is one frame waiting for the writer.
type item struct {
	frame []byte
	ping  bool
}

// conn is one websocket client. The reader goroutine owns subs and handles
// client messages one at a time; a writer goroutine exists only while there
// is something to write, so an idle connection costs one blocked reader.
type conn struct {
	h  *Hub
	ws *websocket.Conn
	p  Principal

	mu        sync.Mutex
	queue     []item
	closeText string               // reason sent with closeCode
	fullSince time.Time            // when an event last found the queue full; zero once the writer takes it
	blocked   map[*stream]struct{} // streams waiting for room in the queue

	// op is held while a client message is handled and while the rights are
	// re-checked: both read p and change subs.
	op     sync.Mutex
	subs   []*stream // under op
	access *stream   // the internal subscription to the agent's or token's access stream; nil for visitors

	// Small fields last, together, so conn fits a smaller size class.
	closeCode  int32 // under mu; when set, the writer sends this close frame and hangs up
	writing    bool  // under mu
	closed     bool  // under mu; accepts no more frames
	bucket     uint8 // which of the pinger's rounds pings this connection
	checking   bool  // under mu; a re-check of the agent's rights runs (access.go)
	checkAgain bool  // under mu; another one was asked for meanwhile
	// When the session that opened c expires, and c's place in the hub's
	// heap of expiries (expiry.go): both under h.expiries.mu.
	expirySlot int32
	expiresAt  int64 // unix nanoseconds
}

// start registers c and runs its reader. It is called with the upgrade done.
func (h *Hub) start(ws *websocket.Conn, p Principal) error {
	c := &conn{h: h, ws: ws, p: p, bucket: uint8(rand.IntN(pingBuckets))}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeGoingAway, "server shutting down"), time.Now().Add(closeFrameDeadline)) //nolint:errcheck
		ws.Close()
		return nil
	}
	h.conns[c] = struct{}{}
	h.connWG.Add(1)
	h.mu.Unlock()
	h.stats.Connections.Add(1)
	h.followAccess(c)
	// A fresh goroutine instead of the HTTP handler's: the handler's stack
	// and the server's per-connection buffers are freed once it returns.
	go c.readLoop()
	return nil
}

type sendResult int

const (
	sent sendResult = iota
	full            // queue full: try again when the writer has taken it
	gone            // closed
)

// offer queues an event frame if there is room. When the queue is full the
// stream is remembered and served again as soon as the writer takes the
// queue, so a burst is paced to the client's speed instead of dropped. A
// client whose queue stays full for SlowAfter is disconnected with
// CloseSlowConsumer; it never blocks the worker or anyone else.
func (c *conn) offer(frame []byte, s *stream, now time.Time) sendResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.roomLocked(s, now); r != sent {
		return r
	}
	c.queue = append(c.queue, item{frame: frame})
	c.startWriterLocked()
	return sent
}

// room reports whether an event frame would be queued now (sent), or
// remembers s to be served when there is room (full), or gone.
func (c *conn) room(s *stream, now time.Time) sendResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roomLocked(s, now)
}

func (c *conn) roomLocked(s *stream, now time.Time) sendResult {
	if c.closed {
		return gone
	}
	if len(c.queue) >= c.h.cfg.SendQueue {
		if c.fullSince.IsZero() {
			c.fullSince = now
		} else if now.Sub(c.fullSince) >= c.h.cfg.SlowAfter {
			c.h.stats.SlowClosed.Add(1)
			c.closeLocked(CloseSlowConsumer, "too slow: send queue full, reconnect and resume")
			return gone
		}
		if s != nil {
			if c.blocked == nil {
				c.blocked = map[*stream]struct{}{}
			}
			c.blocked[s] = struct{}{}
		}
		return full
	}
	return sent
}

// send queues a frame that must not be paced (replies, stream control). A
// client that lets them pile up to twice the queue size is disconnected.
func (c *conn) send(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if len(c.queue) >= 2*c.h.cfg.SendQueue {
		c.h.stats.SlowClosed.Add(1)
		c.closeLocked(CloseSlowConsumer, "too slow: send queue full, reconnect and resume")
		return false
	}
	c.queue = append(c.queue, item{frame: frame})
	c.startWriterLocked()
	return true
}

func (c *conn) queuePing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.queue = append(c.queue, item{ping: true})
	c.startWriterLocked()
}

// pingBuckets spreads pings over the ping interval: each round pings one
// bucket, so 10,000 idle connections are not all woken at once. One ticker
// for the hub instead of a timer per connection.
const pingBuckets = 10

func (h *Hub) pingLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.PingInterval / pingBuckets)
	defer t.Stop()
	var round uint8
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		round = (round + 1) % pingBuckets
		h.mu.Lock()
		due := make([]*conn, 0, len(h.conns)/pingBuckets+1)
		for c := range h.conns {
			if c.bucket == round {
				due = append(due, c)
			}
		}
		h.mu.Unlock()
		for _, c := range due {
			c.queuePing()
		}
	}
}

// closeWith asks the writer to send a close frame and hang up.
func (c *conn) closeWith(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, text)
}

func (c *conn) closeLocked(code int, text string) {
	if c.closed {
		return
	}
	c.closed = true
	c.queue = nil
	c.closeCode, c.closeText = int32(code), text
	c.startWriterLocked()
}

func (c *conn) startWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.h.connWG.Add(1) // the reader's count is still held, see readLoop
	go c.writeLoop()
}

// writeLoop drains the queue and exits when it is empty.
func (c *conn) writeLoop() {
	defer c.h.connWG.Done()
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue = nil
		c.fullSince = time.Time{}
		blocked := c.blocked
		c.blocked = nil
		code, text := int(c.closeCode), c.closeText
		if len(batch) == 0 && code == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		if code != 0 {
			c.closeCode = -1 // sent once
		}
		c.mu.Unlock()
		// The queue has room again: let the worker refill it while this
		// batch is written.
		for s := range blocked {
			c.h.markDirty(s)
		}

		for _, it := range batch {
			c.ws.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteWait)) //nolint:errcheck
			var err error
			if it.ping {
				err = c.ws.WriteMessage(websocket.PingMessage, nil)
			} else {
				err = c.ws.WriteMessage(websocket.TextMessage, it.frame)
			}
			if err != nil {
				c.fail()
				return
			}
		}
		if code > 0 {
			c.ws.SetWriteDeadline(time.Now().Add(closeFrameDeadline))                           //nolint:errcheck
			c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, text)) //nolint:errcheck
			c.fail()
			return
		}
	}
}

// fail hangs up: the reader's next read fails and it cleans up.
func (c *conn) fail() {
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.writing = false
	c.mu.Unlock()
	c.ws.Close()
}

// readLoop is kept tiny on purpose: an idle connection's goroutine sits
// in NextReader, and the less stack the frames down to the blocked read
// need, the smaller the runtime can shrink that goroutine's stack. The work
// is in helpers that are not inlined into it.
func (c *conn) readLoop() {
	defer c.readEnded()
	c.readStart()
	for {
		mt, r, err := c.ws.NextReader()
		if err != nil || !c.onFrame(mt, r) {
			c.logEnd(err)
			return
		}
	}
}

//go:noinline
func (c *conn) readStart() {
	h := c.h
	c.ws.SetReadLimit(int64(h.cfg.MaxMessageBytes * hardLimitFactor))
	c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait)) //nolint:errcheck
	c.ws.SetPongHandler(c.onPong)
}

func (c *conn) onPong(string) error {
	return c.ws.SetReadDeadline(time.Now().Add(c.h.cfg.PongWait))
}

//go:noinline
func (c *conn) logEnd(err error) {
	if err != nil && !errors.Is(err, websocket.ErrReadLimit) && !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		c.h.log.Debug("hub: connection ended", "err", err)
	}
}

// readEnded cleans up after the reader: no more frames, no subscriptions.
//
//go:noinline
func (c *conn) readEnded() {
	h := c.h
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	h.expiries.remove(c)
	c.mu.Unlock()
	c.op.Lock()
	for _, s := range c.subs {
		h.unsubscribe(c, s)
	}
	c.subs = nil
	c.op.Unlock()
	if c.access != nil {
		h.unsubscribe(c, c.access)
	}
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.stats.Connections.Add(-1)
	c.ws.Close()
	h.connWG.Done()
}

// onFrame reads one client message and handles it, in a goroutine of its
// own that the reader waits for: messages are still handled one at a time,
// and the reader's stack never grows past what a blocked read needs, so
// the runtime keeps idle readers at its smallest stack. It returns false
// when the connection is done.
func (c *conn) onFrame(mt int, r io.Reader) bool {
	done := make(chan bool, 1)
	go func() { done <- c.readMessage(mt, r) }()
	return <-done
}

func (c *conn) readMessage(mt int, r io.Reader) bool {
	h := c.h
	c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongWait)) //nolint:errcheck
	if mt != websocket.TextMessage {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return false
		}
		c.sendError("", errorBody{Code: "invalid", Message: "only text frames with JSON messages are accepted"})
		return true
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(h.cfg.MaxMessageBytes)+1))
	if err != nil {
		return false
	}
	if len(data) > h.cfg.MaxMessageBytes {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return false
		}
		c.sendError("", errorBody{Code: "too_large", Message: tooLargeMessage(h.cfg.MaxMessageBytes)})
		return true
	}
	if c.p.Visitor != nil && c.p.Visitor.Expired(time.Now()) {
		c.closeWith(CloseUnauthorized, "widget token expired")
		return true // the writer hangs up; the next read fails
	}
	// A client message never holds its connection longer than this, even if
	// the database or the routing engine hangs.
	ctx, cancel := context.WithTimeout(context.Background(), messageTimeout)
	defer cancel()
	c.op.Lock()
	defer c.op.Unlock()
	c.handle(ctx, data)
	return true
}

const messageTimeout = 15 * time.Second

// upgrader is shared: buffers are small and the write buffer is pooled, so
// an idle connection holds only its read buffer.
func (h *Hub) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:   h.cfg.ReadBufferSize,
		WriteBufferSize:  4096,
		WriteBufferPool:  writePool,
		HandshakeTimeout: 10 * time.Second,
		// Origins are checked before Upgrade so the caller can write the error.
		CheckOrigin: func(*http.Request) bool { return true },
	}
}

var writePool = &sync.Pool{}

func logAttrs(p Principal) []any {
	if p.Visitor != nil {
		return []any{slog.Int64("account_id", p.Visitor.AccountID), slog.String("visitor_id", p.Visitor.VisitorID)}
	}
	return []any{slog.Int64("account_id", p.Actor.AccountID), slog.Int64("agent_id", p.Actor.AgentID)}
}
