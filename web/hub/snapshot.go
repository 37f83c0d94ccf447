package hub

import (
	"context"
	"encoding/json"
	"time"
)

// Snapshots is implemented by Actions that can describe at once what a
// client of a stream shows. After a "resync" of such a stream the hub sends
// the snapshot right behind it, so the client rebuilds its view from one
// frame instead of reloading over REST (the chat widget: chat.state).
type Snapshots interface {
	// Snapshot returns the frame type and data that rebuild a client's
	// view of stream; typ "" when the stream has none.
	Snapshot(ctx context.Context, accountID int64, stream string) (typ string, data any, err error)
}

const snapshotTimeout = 5 * time.Second

// snapshot sends the snapshot of key's stream to the connections that were
// just told to resync. It runs on the worker serving the stream, after the
// resync frames were queued and before the stream's next events are read,
// so the snapshot arrives after "resync" and before any later event. It
// reflects the state when it was read: events after the resync's seq that
// follow may already be in it.
func (h *Hub) snapshot(ctx context.Context, key streamKey, conns []*conn) {
	sn, ok := h.actions.(Snapshots)
	if !ok || len(conns) == 0 {
		return
	}
	// The worker waits for it: bounded, so a slow database delays this
	// stream's snapshot, not every stream for long.
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	typ, data, err := sn.Snapshot(ctx, key.account, key.name)
	if err != nil {
		// The client still has its resync: it reloads by itself.
		h.log.Warn("hub: snapshot after resync", "stream", key.name, "err", err)
		return
	}
	if typ == "" {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		h.log.Warn("hub: snapshot after resync", "stream", key.name, "err", err)
		return
	}
	frame := marshalFrame(envelope{Type: typ, Stream: key.name, Data: raw})
	for _, c := range conns {
		c.send(frame)
	}
}
