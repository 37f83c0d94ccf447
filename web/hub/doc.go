// Package hub owns AgentDesk's realtime delivery: durable event streams in
// PostgreSQL and the websocket connections of agents, supervisors and chat
// visitors.
//
// Streams. Anything that changes what someone sees on screen is an Event
// published to a stream ("agent:42", "supervisor:7", "ticket:9",
// "visitor:v_ab12") with Publish, inside the transaction that made the
// change (in a postgres.InTx transaction the row is sent with the COMMIT,
// in its round trip, not one of its own). The commit trigger of migration 004 numbers events per stream
// (gap-free, in commit order) and stamps the stream's head with a change
// id. Every process's Hub reads that change feed every 10 ms, reads what
// its clients miss (many streams per query) and fans it out; a full poll of
// the followed streams' heads every second is the guarantee, so delivery
// never depends on the feed's timing. (The trigger does not NOTIFY: a
// transaction that notifies holds a cluster-wide lock through its commit
// flush, which serialised every publishing transaction.) Events are kept for
// Config.Retention (24h) so a client that reconnects — to any process —
// resumes from its last sequence number and receives exactly the missed
// events, or a "resync" instruction when it is too far behind — followed,
// when Actions can describe the stream (Snapshots: a visitor's chat), by a
// snapshot that rebuilds the client's view at once. Typing
// indicators are ephemeral: NOTIFY only (LISTEN on a dedicated
// connection), never stored or resumed.
//
// Connections. One reader goroutine per connection; each client message is
// handled in a short-lived goroutine the reader waits for, so an idle
// reader's stack stays small. A writer goroutine runs only while frames are
// queued (an idle connection has none) and drains a bounded queue; event
// delivery is paced to that queue, so a burst waits in the database, not in
// memory. One pinger per hub pings every connection every 25 s, and one
// goroutine per hub re-checks each connection whose session expires (a
// heap of connections by expiry, expiry.go, not a timer each). A client
// whose queue stays full for 5 s is disconnected with close code 4008 and
// never blocks anyone else. Every client message passes the hub's
// authorisation rules; what a client may do beyond following streams (send
// chat, set presence, answer offers) is carried out by the Actions the web
// layer supplies (web.HubActions). Visitors authenticate with HMAC-signed,
// expiring widget tokens (token.go) and are rate limited per visitor and
// per IP. web/PROTOCOL.md is the wire protocol.
//
// Memory: an idle connection is one goroutine blocked in a read, gorilla's
// connection with a 256-byte read buffer (write buffers are pooled) and the
// hub's bookkeeping (the connection, a subscription to its agent stream
// and one to its access stream, a slot in the heap of expiries; no timer)
// — ~3.5 KB of heap and a 2 or 4 KB stack, which the runtime's adaptive
// initial stack decides: ~5 KB in all when the server runs with
// GODEBUG=adaptivestackstart=0 (BENCHMARKS.md, Realtime). The sizes of
// conn and sub are held to their size classes by a test.
//
// The hub must never: import package web or routing (they import it); keep
// state that matters only in memory (a lost process loses connections,
// never events); write to business tables (Actions does); or let one
// connection's slowness delay another's delivery.
//
// Written on gorilla/websocket and pgx; no library provides durable,
// resumable per-stream sequences on PostgreSQL, hence this package.
package hub
