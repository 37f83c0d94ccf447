package hub

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// Concurrent writers to one stream: numbers are 1..N without gaps, and a
// reader that repeatedly reads "seq > last" sees a contiguous sequence
// (never 105 before 104 is visible) — whether the commit trigger numbers
// the events (a pgx transaction) or their inserts do, sent with the COMMIT
// (postgres.InTx), and with both kinds of writer at once.
func TestPublishIsGapFreeAndCommitOrdered(t *testing.T) {
	t.Parallel()
	inTx := func(ctx context.Context, db *pgxpool.Pool, fn func(pgx.Tx) error) error {
		return postgres.InTx(ctx, db, fn)
	}
	beginFunc := func(ctx context.Context, db *pgxpool.Pool, fn func(pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, db, fn)
	}
	for name, txs := range map[string][]func(context.Context, *pgxpool.Pool, func(pgx.Tx) error) error{
		"numbered by the commit trigger": {beginFunc},
		"numbered with the commit":       {inTx},
		"both":                           {beginFunc, inTx},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			publishConcurrently(t, txs)
		})
	}
}

func publishConcurrently(t *testing.T, txs []func(context.Context, *pgxpool.Pool, func(pgx.Tx) error) error) {
	e := newEnv(t)
	ctx := context.Background()
	const writers, each = 8, 40
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		var last int64
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			rows, err := e.db.Query(ctx, "SELECT seq FROM stream_events WHERE account_id = $1 AND stream = 'supervisor:1' AND seq > $2 ORDER BY seq", e.account, last)
			if err != nil {
				readerDone <- err
				return
			}
			seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				readerDone <- err
				return
			}
			for _, s := range seqs {
				if s != last+1 {
					t.Errorf("reader saw seq %d after %d", s, last)
				}
				last = s
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				inTx := txs[w%len(txs)]
				err := inTx(ctx, e.db, func(tx pgx.Tx) error {
					if err := Publish(ctx, tx, Event{AccountID: e.account, Stream: "supervisor:1", Type: "x", Data: []int{w, i}}); err != nil {
						return err
					}
					// other work in the same transaction, on another stream
					return Publish(ctx, tx, Event{AccountID: e.account, Stream: AgentStream(int64(w)), Type: "y", Data: i})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	var n, max int64
	e.db.QueryRow(ctx, "SELECT count(*), max(seq) FROM stream_events WHERE account_id = $1 AND stream = 'supervisor:1'", e.account).Scan(&n, &max)
	if n != writers*each || max != n {
		t.Errorf("count %d max %d, want both %d", n, max, writers*each)
	}
	var head int64
	e.db.QueryRow(ctx, "SELECT last_seq FROM stream_heads WHERE account_id = $1 AND stream = 'supervisor:1'", e.account).Scan(&head)
	if head != n {
		t.Errorf("head %d, want %d", head, n)
	}
}

// An event that comes numbered (sent with an InTx transaction's COMMIT) is
// numbered once: the commit trigger passes over it, so the stream's head
// and the row agree, and the next event follows on.
func TestNumberedEventIsNumberedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insertNumberedEvent, e.account, "agent:1", "a", "1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.publish("agent:1", "b", 2)
	if err := postgres.InTx(ctx, e.db, func(tx pgx.Tx) error {
		return Publish(ctx, tx, Event{AccountID: e.account, Stream: "agent:1", Type: "c", Data: 3})
	}); err != nil {
		t.Fatal(err)
	}
	rows, _ := e.db.Query(ctx, "SELECT type || seq FROM stream_events WHERE account_id = $1 AND stream = 'agent:1' ORDER BY id", e.account)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var head int64
	if err := e.db.QueryRow(ctx, "SELECT last_seq FROM stream_heads WHERE account_id = $1 AND stream = 'agent:1'", e.account).Scan(&head); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a1", "b2", "c3"}) || head != 3 {
		t.Errorf("events %v with head %d, want [a1 b2 c3] and 3", got, head)
	}
}

func TestRolledBackEventIsNeverSeenNorNumbered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.publish("agent:1", "a", 1)
	tx, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Publish(ctx, tx, Event{AccountID: e.account, Stream: "agent:1", Type: "lost", Data: 2}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	e.publish("agent:1", "b", 3)
	rows, _ := e.db.Query(ctx, "SELECT type FROM stream_events WHERE account_id = $1 AND stream = 'agent:1' ORDER BY seq", e.account)
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 2 || types[0] != "a" || types[1] != "b" {
		t.Errorf("events %v, want [a b]", types)
	}
}

func TestPublishValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, ev := range []Event{
		{AccountID: 0, Stream: "agent:1", Type: "x"},
		{AccountID: e.account, Stream: "agent", Type: "x"},
		{AccountID: e.account, Stream: "Agent:1", Type: "x"},
		{AccountID: e.account, Stream: "agent:1", Type: ""},
	} {
		err := pgx.BeginFunc(context.Background(), e.db, func(tx pgx.Tx) error { return Publish(context.Background(), tx, ev) })
		if err == nil {
			t.Errorf("Publish(%+v) succeeded", ev)
		}
	}
}

// A client resumes from its last seq after every disconnect while events
// keep being published: it ends with every event exactly once, in order.
func TestResumeAfterDisconnectNoLossNoDuplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	const total = 400
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range total / 4 {
					e.publish("agent:10", "tick", map[string]int{"w": w, "i": i})
				}
			})
		}
		wg.Wait()
	}()
	var got []int64
	last := int64(0)
	for round := 0; last < total; round++ {
		c := srv.dialAgent(t, 10, "agent")
		if f := c.request("resume", resumeFrom("agent:10", last)); f.Type != "ack" {
			t.Fatalf("resume: %s", f.Data)
		}
		// read a few events, then drop the connection mid-stream
		for n := 0; n < 37 && last < total; {
			f := c.read()
			switch f.Type {
			case "subscribed":
				if f.Seq != last {
					t.Fatalf("subscribed at %d, want %d", f.Seq, last)
				}
			case "tick":
				got = append(got, f.Seq)
				last = f.Seq
				n++
			case "resync":
				t.Fatalf("unexpected resync at %d", f.Seq)
			}
		}
		c.ws.Close()
	}
	<-pubDone
	if len(got) != total {
		t.Fatalf("got %d events, want %d", len(got), total)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, s)
		}
	}
}

// An event published through one process's database pool reaches a client
// connected to another process's hub, woken by the change feed; typing
// (NOTIFY only) crosses too.
func TestEventsCrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.startHub(Config{PollInterval: time.Hour}) // only the change feed can wake it
	b := e.startHub(Config{PollInterval: time.Hour})
	ca := a.dialAgent(t, 10, "agent")
	cb := b.dialAgent(t, 10, "agent")
	for _, c := range []*client{ca, cb} {
		c.request("resume", nil)
		if f := c.readUntil("subscribed", ""); f.Stream != "agent:10" || f.Seq != 0 {
			t.Fatalf("subscribed %+v", f)
		}
	}
	// chat.send through hub A publishes from A's side; B's client gets it
	sup := a.dialAgent(t, 99, "supervisor")
	if f := sup.request("chat.send", map[string]any{"ticket_id": 1, "body": "hello"}); f.Type != "ack" {
		t.Fatalf("chat.send: %s", f.Data)
	}
	e.publish("agent:10", "offer.created", map[string]int{"offer_id": 5})
	for _, c := range []*client{ca, cb} {
		f := c.readUntil("offer.created", "")
		if f.Seq != 1 || f.Stream != "agent:10" {
			t.Errorf("got %+v", f)
		}
	}
	// ephemeral typing from a customer on B reaches the agent following the ticket on A
	cust := b.dial(t, "/ws/customer?token="+e.token("v1"), http.Header{"Origin": {"https://shop.example"}})
	cust.request("resume", nil)
	if f := ca.request("resume", resumeFrom("ticket:1", -1)); f.Type != "ack" {
		t.Fatalf("resume ticket: %s", f.Data)
	}
	ca.readUntil("subscribed", "")
	if f := cust.request("typing", map[string]any{"ticket_id": 1, "typing": true}); f.Type != "ack" {
		t.Fatalf("typing: %s", f.Data)
	}
	if f := ca.readUntil("typing", ""); f.Seq != 0 || f.Stream != "ticket:1" {
		t.Errorf("typing frame %+v", f)
	}
}

// A change the feed never shows (here: written without the trigger, so no
// change id) is still delivered by the full poll.
func TestPollDeliversWhatTheFeedMissed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{PollInterval: 20 * time.Millisecond})
	c := srv.dialAgent(t, 10, "agent")
	c.request("resume", nil)
	c.readUntil("subscribed", "")
	ctx := context.Background()
	// Write the event and its head directly: triggers are off for this
	// transaction, so the head keeps change_id 0.
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO stream_events (account_id, stream, seq, type, data) VALUES ($1, 'agent:10', 1, 'quiet', '{}')`, e.account); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO stream_heads (account_id, stream, last_seq) VALUES ($1, 'agent:10', 1)`, e.account)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := c.readUntil("quiet", ""); f.Seq != 1 {
		t.Errorf("got %+v", f)
	}
}

func TestResyncWhenTooFarBehindOrPruned(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{MaxBacklog: 5})
	for i := range 10 {
		e.publish("agent:10", "e", i)
	}
	c := srv.dialAgent(t, 10, "agent")

	c.request("resume", resumeFrom("agent:10", 2)) // 8 behind > 5
	if f := c.readUntil("resync", ""); f.Seq != 10 {
		t.Errorf("resync at %d, want 10", f.Seq)
	}
	c.request("resume", resumeFrom("agent:10", 50)) // from the future
	if f := c.readUntil("resync", ""); f.Seq != 10 {
		t.Errorf("resync at %d, want 10", f.Seq)
	}
	c.request("resume", resumeFrom("agent:10", 7)) // close enough
	c.readUntil("subscribed", "")
	for want := int64(8); want <= 10; want++ {
		if f := c.readUntil("e", ""); f.Seq != want {
			t.Fatalf("seq %d, want %d", f.Seq, want)
		}
	}

	n, err := srv.hub.Prune(context.Background(), time.Now().Add(time.Minute))
	if err != nil || n != 10 {
		t.Fatalf("prune: %d %v", n, err)
	}
	e.publish("agent:10", "e", 11)
	if f := c.readUntil("e", ""); f.Seq != 11 { // a live client is unaffected
		t.Fatalf("seq %d", f.Seq)
	}
	c2 := srv.dialAgent(t, 10, "agent")
	c2.request("resume", resumeFrom("agent:10", 8)) // 9..10 pruned
	if f := c2.readUntil("resync", ""); f.Seq != 11 {
		t.Errorf("resync at %d, want 11", f.Seq)
	}
	c2.request("resume", resumeFrom("agent:10", 10)) // 11 retained
	c2.readUntil("subscribed", "")
	if f := c2.readUntil("e", ""); f.Seq != 11 {
		t.Errorf("seq %d", f.Seq)
	}
}

// Streams are per account: the same name in another account is another
// stream, never delivered here.
func TestStreamsAreScopedByAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var other int64
	if err := e.db.QueryRow(context.Background(), "INSERT INTO accounts (name) VALUES ('Other') RETURNING id").Scan(&other); err != nil {
		t.Fatal(err)
	}
	srv := e.startHub(Config{})
	c := srv.dialAgent(t, 10, "agent")
	c.request("resume", resumeFrom("agent:10", 0))
	c.readUntil("subscribed", "")
	err := pgx.BeginFunc(context.Background(), e.db, func(tx pgx.Tx) error {
		return Publish(context.Background(), tx, Event{AccountID: other, Stream: "agent:10", Type: "foreign", Data: "secret"})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.publish("agent:10", "mine", nil)
	f := c.readUntil("mine", "")
	if f.Seq != 1 {
		t.Errorf("seq %d, want 1 (the other account's stream numbers on its own)", f.Seq)
	}
	for _, seen := range c.seen {
		if strings.HasPrefix(seen, "foreign") {
			t.Errorf("received another account's event: %s", seen)
		}
	}
}

// A database migrated with the first version of 004 (no change feed) still
// gets every event, by the full poll.
func TestWithoutChangeFeedPollDelivers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, `DROP INDEX stream_heads_change; ALTER TABLE stream_heads DROP COLUMN change_id;
CREATE OR REPLACE FUNCTION stream_events_number() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    INSERT INTO stream_heads AS h (account_id, stream, last_seq) VALUES (NEW.account_id, NEW.stream, 1)
    ON CONFLICT (account_id, stream) DO UPDATE SET last_seq = h.last_seq + 1 RETURNING h.last_seq INTO n;
    UPDATE stream_events SET seq = n WHERE id = NEW.id;
    RETURN NULL;
END $$`); err != nil {
		t.Fatal(err)
	}
	srv := e.startHub(Config{PollInterval: 20 * time.Millisecond})
	c := srv.dialAgent(t, 10, "agent")
	c.request("resume", nil)
	c.readUntil("subscribed", "")
	e.publish("agent:10", "polled", nil)
	if f := c.readUntil("polled", ""); f.Seq != 1 {
		t.Errorf("seq %d", f.Seq)
	}
}

// An agent's default stream is its own (the desk follows account:<id> and
// team:<id> while a list of new tickets is on screen); a supervisor's its
// own and the supervisors'. The ack names the account for those names.
func TestDefaultStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	acct := strconv.FormatInt(e.account, 10)
	for _, tc := range []struct {
		agent int64
		role  agentdesk.Role
		want  []string
	}{
		{10, agentdesk.RoleAgent, []string{"agent:10"}},
		{11, agentdesk.RoleAgent, []string{"agent:11"}}, // member of team 5
		{12, agentdesk.RoleSupervisor, []string{"agent:12", "supervisor:" + acct}},
	} {
		c := srv.dialAgent(t, tc.agent, tc.role)
		if f := c.request("resume", nil); f.Type != "ack" || string(f.Data) != `{"account_id":`+acct+`}` {
			t.Fatalf("agent %d: resume %+v", tc.agent, f)
		}
		var got []string
		for range tc.want {
			got = append(got, c.readUntil("subscribed", "").Stream)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("agent %d (%s) follows %v, want %v", tc.agent, tc.role, got, tc.want)
		}
	}
}
