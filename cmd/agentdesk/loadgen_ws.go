package main

// loadgen ws measures the websocket hub (package web/hub) on this machine:
//
//  1. N idle agent connections to one server process: the server's memory
//     per connection beyond its baseline (Go heap + stacks, and RSS).
//  2. The server restarts (SIGTERM, a new process on the same port) while one
//     event per agent is published; the time until every client has
//     reconnected, resumed and received exactly that event.
//  3. C concurrent chats: customer chat.send → the assigned agent receives
//     the message event. Latency p50/p99 at 1 message/s per chat, then the
//     messages/s of a closed loop.
//
// With --lists it measures instead the fan-out of new tickets to the desk's
// lists: N idle agents of which a fraction (--viewers) show All open and so
// follow account:<id>; tickets are created at --ticket-rate (ticket.created
// on account:<id> and supervisor:<id>, as web publishes an unassigned
// ticket); reported: ticket.created latency p50/p99 to the viewers, the
// server's event frames/s and CPU. --all-follow makes every agent follow
// account:<id>, as every desk did by default before the lists followed it
// on demand.
//
// The server is a child process (this binary, "loadgen ws --serve") so the
// clients' memory is not counted. It runs the hub behind a plain mux: agents
// are identified by a header instead of a sign-in (each connection is still
// handed a session expiring after --session-ttl, as the web hands over a
// sign-in cookie's, so the hub tracks its expiry as in production), and
// chat.send publishes the message events without storing a message row, so
// the figures are the hub's (database event log included), not the REST
// layer's.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web/hub"
)

type wsLoadConfig struct {
	databaseURL string
	conns       int
	chats       int
	chatFor     time.Duration
	serve       bool
	addr        string
	account     int64
	readBuf     int
	writers     int
	godebug     string
	sessionTTL  time.Duration

	lists      bool
	viewers    float64
	ticketRate float64
	listsFor   time.Duration
	allFollow  bool
}

func init() {
	registerLoadgen("ws", "websocket hub: idle connections, restart and resume, chat latency", loadgenWS)
}

var wsWidgetSecret = []byte("loadgen-ws-widget-secret-32-bytes!!")

func loadgenWS(ctx context.Context, args []string) error {
	fs := newFlagSet("loadgen ws")
	var c wsLoadConfig
	dbURL := databaseURLFlag(fs)
	fs.IntVar(&c.conns, "conns", 10000, "idle agent connections")
	fs.IntVar(&c.chats, "chats", 500, "concurrent active chats")
	fs.DurationVar(&c.chatFor, "chat-duration", 15*time.Second, "length of each chat phase")
	fs.IntVar(&c.writers, "writers", 16, "concurrent publishing transactions in the contention phase (0 skips it)")
	fs.StringVar(&c.godebug, "server-godebug", "", "GODEBUG for the server process (default: as serve sets it, adaptivestackstart=0; adaptivestackstart=1 for the runtime's default)")
	fs.IntVar(&c.readBuf, "read-buffer", 0, "server read buffer per connection (0 = the hub's default)")
	fs.DurationVar(&c.sessionTTL, "session-ttl", 12*time.Hour, "lifetime of the session each agent connection is opened with, as the web's sign-in cookie (0 = none, as an API token's connection)")
	fs.BoolVar(&c.lists, "lists", false, "measure the fan-out of new tickets to the lists instead (--conns agents, --viewers, --ticket-rate)")
	fs.Float64Var(&c.viewers, "viewers", 0.05, "with --lists: fraction of the agents showing All open (following account:<id>)")
	fs.Float64Var(&c.ticketRate, "ticket-rate", 50, "with --lists: new tickets per second")
	fs.DurationVar(&c.listsFor, "lists-duration", 20*time.Second, "with --lists: how long tickets are created")
	fs.BoolVar(&c.allFollow, "all-follow", false, "with --lists: every agent follows account:<id> (the default streams before on-demand lists)")
	fs.BoolVar(&c.serve, "serve", false, "internal: run the measured server process")
	fs.StringVar(&c.addr, "addr", "", "internal: server address")
	fs.Int64Var(&c.account, "account", 0, "internal: account id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c.databaseURL = *dbURL
	if c.databaseURL == "" {
		return errors.New("loadgen ws: --database-url (or DATABASE_URL) is required")
	}
	raiseFileLimit()
	if c.serve {
		smallStacks() // as serve does
		return wsLoadServer(ctx, c)
	}
	return wsLoadRun(ctx, c)
}

// raiseFileLimit lifts the soft limit on open files to the hard limit:
// every connection is a file descriptor.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) //nolint:errcheck
	}
}

// ---- the measured server process ----

// wsLoadActions plays the store: ticket i is assigned to agent i and
// belongs to visitor "v<i>"; chat.send publishes to both streams; a
// session lasts sessionTTL from its re-check.
type wsLoadActions struct {
	db         *pgxpool.Pool
	sessionTTL time.Duration
}

func (a wsLoadActions) Ticket(ctx context.Context, accountID, id int64) (hub.TicketInfo, error) {
	return hub.TicketInfo{ID: id, AssigneeID: id, VisitorID: "v" + strconv.FormatInt(id, 10)}, nil
}

func (a wsLoadActions) Task(ctx context.Context, accountID, id int64) (hub.TicketInfo, error) {
	return a.Ticket(ctx, accountID, id)
}

func (a wsLoadActions) SendChat(ctx context.Context, p hub.Principal, ticketID int64, m hub.ChatMessage) (int64, int64, error) {
	if p.IsCustomer() && ticketID == 0 {
		ticketID, _ = strconv.ParseInt(strings.TrimPrefix(p.Visitor.VisitorID, "v"), 10, 64)
	}
	data := map[string]any{"ticket_id": ticketID, "body": m.Body}
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		if err := hub.Publish(ctx, tx, hub.Event{AccountID: p.AccountID(), Stream: hub.TicketStream(ticketID), Type: "message.created", Data: data}); err != nil {
			return err
		}
		return hub.Publish(ctx, tx, hub.Event{AccountID: p.AccountID(), Stream: hub.VisitorStream("v" + strconv.FormatInt(ticketID, 10)), Type: "message.created", Data: data})
	})
	return 0, ticketID, err
}

func (wsLoadActions) SetPresence(context.Context, agentdesk.Actor, string, string) error { return nil }
func (wsLoadActions) AcceptOffer(context.Context, agentdesk.Actor, int64) error          { return nil }
func (wsLoadActions) RejectOffer(context.Context, agentdesk.Actor, int64, string) error  { return nil }
func (a wsLoadActions) Agent(_ context.Context, acct, id int64, session string) (agentdesk.Actor, time.Time, error) {
	var expires time.Time
	if session != "" {
		expires = time.Now().Add(a.sessionTTL)
	}
	return agentdesk.Actor{AccountID: acct, AgentID: id, Role: agentdesk.RoleAgent}, expires, nil
}
func (wsLoadActions) Token(_ context.Context, acct, id int64) (agentdesk.Actor, error) {
	return agentdesk.Actor{AccountID: acct, TokenID: id, Role: agentdesk.RoleSupervisor}, nil
}
func (wsLoadActions) WidgetOrigins(context.Context, int64, string) ([]string, error) {
	return []string{"*"}, nil
}

type wsServerStats struct {
	HeapInuse  uint64  `json:"heap_inuse"`
	StackInuse uint64  `json:"stack_inuse"`
	Sys        uint64  `json:"sys"`
	RSS        uint64  `json:"rss"`
	Goroutines int     `json:"goroutines"`
	Conns      int64   `json:"conns"`
	FeedWakes  int64   `json:"feed_wakes"`
	PollWakes  int64   `json:"poll_wakes"`
	Fetches    int64   `json:"fetches"`
	EventsSent int64   `json:"events_sent"`
	SlowClosed int64   `json:"slow_closed"`
	CPUSeconds float64 `json:"cpu_seconds"` // user + system, read before the stats' own GCs
	CPUAfter   float64 `json:"cpu_after"`   // and after them
}

func wsLoadServer(ctx context.Context, c wsLoadConfig) error {
	if os.Getenv("LOADGEN_WS_PROFILE") != "" {
		runtime.MemProfileRate = 1 // exact heap profile, for finding per-connection bytes
	}
	db, err := postgres.Open(ctx, c.databaseURL, 16)
	if err != nil {
		return err
	}
	defer db.Close()
	cfg := hub.Config{VisitorRate: 1e6, VisitorBurst: 1e6, IPRate: 1e6, IPBurst: 1e6, ReadBufferSize: c.readBuf}
	h := hub.New(db, wsLoadActions{db, c.sessionTTL}, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := h.Start(ctx); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/agent", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.Header.Get("X-Agent"), 10, 64)
		if c.sessionTTL > 0 { // as the web hands over a sign-in cookie's session
			r = r.WithContext(hub.WithSession(r.Context(), "loadgen-session-"+strconv.FormatInt(id, 10), time.Now().Add(c.sessionTTL)))
		}
		if err := h.ServeAgent(w, r, agentdesk.Actor{AccountID: c.account, AgentID: id, Role: agentdesk.RoleAgent}); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("/ws/customer", func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeCustomer(w, r, wsWidgetSecret); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		cpu := cpuSeconds()
		for range 3 { // each GC halves idle goroutine stacks that allow it
			runtime.GC()
		}
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		json.NewEncoder(w).Encode(wsServerStats{ //nolint:errcheck
			HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, Sys: m.Sys, RSS: readRSS(),
			Goroutines: runtime.NumGoroutine(), Conns: h.Stats().Connections.Load(),
			FeedWakes: h.Stats().FeedWakes.Load(), PollWakes: h.Stats().PollWakes.Load(), Fetches: h.Stats().Fetches.Load(),
			EventsSent: h.Stats().EventsSent.Load(), SlowClosed: h.Stats().SlowClosed.Load(), CPUSeconds: cpu, CPUAfter: cpuSeconds(),
		})
	})
	mux.HandleFunc("/debug/pprof/heap", pprof.Index)
	mux.HandleFunc("/debug/pprof/goroutine", pprof.Index)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	fmt.Println("ready", ln.Addr().String())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(stopCtx) //nolint:errcheck
	return h.Stop(stopCtx)
}

// cpuSeconds is the process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ---- the load generator ----

type wsChild struct {
	cmd  *exec.Cmd
	addr string
}

func startWSChild(ctx context.Context, c wsLoadConfig, addr string) (*wsChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "loadgen", "ws", "--serve", "--addr", addr, "--database-url", c.databaseURL,
		"--account", strconv.FormatInt(c.account, 10), "--read-buffer", strconv.Itoa(c.readBuf), "--session-ttl", c.sessionTTL.String())
	cmd.Stderr = os.Stderr
	if c.godebug != "" {
		cmd.Env = append(os.Environ(), "GODEBUG="+c.godebug)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("server process did not start: %w", err)
	}
	go io.Copy(io.Discard, out) //nolint:errcheck
	a, _ := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	return &wsChild{cmd: cmd, addr: a}, nil
}

func (ch *wsChild) stop() error {
	ch.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	return ch.cmd.Wait()
}

func (ch *wsChild) stats() (wsServerStats, error) {
	var s wsServerStats
	resp, err := http.Get("http://" + ch.addr + "/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// dialer spreads client connections over several loopback source addresses
// so that 2×N connections never run out of ephemeral ports.
func wsDialer(i int) *websocket.Dialer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}, Timeout: 10 * time.Second}
	return &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 20 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
}

type wsFrame struct {
	Type   string          `json:"type"`
	Stream string          `json:"stream"`
	Seq    int64           `json:"seq"`
	ID     string          `json:"id"`
	Data   json.RawMessage `json:"data"`
}

// idleAgent keeps one agent connected: it reconnects with jittered backoff
// and resumes from its last seq.
type idleAgent struct {
	id      int
	last    atomic.Int64
	up      chan struct{} // receives after each successful resume
	gotSeq  chan int64    // every event seq received
	dupes   atomic.Int64
	conn    atomic.Pointer[websocket.Conn]
	stopped atomic.Bool
}

func (a *idleAgent) run(ctx context.Context, addr string, wg *sync.WaitGroup) {
	defer wg.Done()
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil && !a.stopped.Load() {
		err := a.session(ctx, addr)
		if ctx.Err() != nil || a.stopped.Load() {
			return
		}
		_ = err
		// jitter spreads a mass reconnect instead of a thundering herd
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(backoff)))):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (a *idleAgent) session(ctx context.Context, addr string) error {
	ws, _, err := wsDialer(a.id).DialContext(ctx, "ws://"+addr+"/ws/agent", http.Header{"X-Agent": {strconv.Itoa(a.id)}})
	if err != nil {
		return err
	}
	a.conn.Store(ws)
	defer ws.Close()
	last := a.last.Load()
	resume := map[string]any{"stream": hub.AgentStream(int64(a.id))}
	if last >= 0 {
		resume["last_seq"] = last
	}
	if err := ws.WriteJSON(map[string]any{"type": "resume", "data": map[string]any{"streams": []any{resume}}}); err != nil {
		return err
	}
	for {
		var f wsFrame
		if err := ws.ReadJSON(&f); err != nil {
			return err
		}
		switch {
		case f.Type == "subscribed":
			if last < 0 {
				a.last.Store(f.Seq)
			}
			select {
			case a.up <- struct{}{}:
			default:
			}
		case f.Type == "resync":
			a.last.Store(f.Seq)
		case f.Seq > 0:
			if f.Seq <= a.last.Load() {
				a.dupes.Add(1)
				continue
			}
			a.last.Store(f.Seq)
			select {
			case a.gotSeq <- f.Seq:
			default:
			}
		}
	}
}

func wsLoadRun(ctx context.Context, c wsLoadConfig) error {
	db, err := postgres.Open(ctx, c.databaseURL, int32(max(8, c.writers)))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := postgres.Migrate(ctx, db); err != nil {
		return err
	}
	if err := db.QueryRow(ctx, "INSERT INTO accounts (name) VALUES ('loadgen ws') RETURNING id").Scan(&c.account); err != nil {
		return err
	}
	// a free port the restarted server can take again
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()

	if c.lists {
		return wsLists(ctx, db, c, addr)
	}
	fmt.Printf("loadgen ws: %d idle agents, %d chats; %d CPUs, %s\n", c.conns, c.chats, runtime.NumCPU(), runtime.Version())
	if c.writers > 0 {
		if err := wsPublishContention(ctx, db, c); err != nil {
			return err
		}
	}
	child, err := startWSChild(ctx, c, addr)
	if err != nil {
		return err
	}
	defer func() {
		if child != nil {
			child.stop() //nolint:errcheck
		}
	}()
	base, err := child.stats()
	if err != nil {
		return err
	}

	// 1. idle connections
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	agents := make([]*idleAgent, c.conns)
	start := time.Now()
	for i := range agents {
		a := &idleAgent{id: i + 1, up: make(chan struct{}, 1), gotSeq: make(chan int64, 4)}
		a.last.Store(-1)
		agents[i] = a
		wg.Add(1)
		go a.run(runCtx, addr, &wg)
		if i%200 == 199 { // do not flood the listen backlog
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := waitAll(ctx, agents, func(a *idleAgent) <-chan struct{} { return a.up }, 2*time.Minute); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	connectTime := time.Since(start)
	time.Sleep(2 * time.Second) // let handshake garbage go
	loaded, err := child.stats()
	if err != nil {
		return err
	}
	perHeap := float64(loaded.HeapInuse+loaded.StackInuse-base.HeapInuse-base.StackInuse) / float64(c.conns)
	perRSS := float64(int64(loaded.RSS)-int64(base.RSS)) / float64(c.conns)
	fmt.Printf("idle: %d connections up in %s; server goroutines %d (baseline %d)\n", loaded.Conns, connectTime.Round(time.Millisecond), loaded.Goroutines, base.Goroutines)
	if dir := os.Getenv("LOADGEN_WS_PROFILE"); dir != "" { // where to save the server's profiles
		for _, p := range []string{"heap", "goroutine?debug=1"} {
			if resp, err := http.Get("http://" + child.addr + "/debug/pprof/" + p); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				os.WriteFile(dir+"/"+strings.TrimSuffix(p, "?debug=1")+".pprof", b, 0o644) //nolint:errcheck
			}
		}
	}
	fmt.Printf("idle: memory per connection: %.0f B Go heap+stacks (heap %.0f, stacks %.0f), %.0f B RSS\n", perHeap,
		float64(loaded.HeapInuse-base.HeapInuse)/float64(c.conns), float64(loaded.StackInuse-base.StackInuse)/float64(c.conns), perRSS)

	// 2. restart: stop the server, publish one event per agent while it is
	// down, start a new one on the same port.
	stopAt := time.Now()
	if err := child.stop(); err != nil {
		fmt.Printf("restart: old server exited: %v\n", err)
	}
	child = nil
	downFor := time.Since(stopAt)
	names := make([]string, len(agents))
	for i, a := range agents {
		names[i] = hub.AgentStream(int64(a.id))
	}
	// what hub.Publish does, for 10,000 streams in one statement
	_, err = db.Exec(ctx, "INSERT INTO stream_events (account_id, stream, type, data) SELECT $1, s, 'while.down', '{}' FROM unnest($2::text[]) AS s", c.account, names)
	if err != nil {
		return err
	}
	publishedAt := time.Now()
	child, err = startWSChild(ctx, c, addr)
	if err != nil {
		return err
	}
	readyAt := time.Now()
	if err := waitAll(ctx, agents, func(a *idleAgent) <-chan struct{} {
		ch := make(chan struct{})
		go func() {
			defer close(ch)
			for {
				select {
				case s := <-a.gotSeq:
					if s == 1 {
						return
					}
				case <-runCtx.Done():
					return
				}
			}
		}()
		return ch
	}, 2*time.Minute); err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	allAt := time.Now()
	var dupes int64
	for _, a := range agents {
		dupes += a.dupes.Load()
	}
	fmt.Printf("restart: old server stopped in %s (1001 to every client); %d events published while down in %s\n",
		downFor.Round(time.Millisecond), c.conns, publishedAt.Sub(stopAt).Round(time.Millisecond))
	fmt.Printf("restart: all %d reconnected, resumed and got the missed event %s after the new server was ready (%s after the old one began stopping); duplicates: %d\n",
		c.conns, allAt.Sub(readyAt).Round(time.Millisecond), allAt.Sub(stopAt).Round(time.Millisecond), dupes)
	for _, a := range agents {
		a.stopped.Store(true)
		if ws := a.conn.Load(); ws != nil {
			ws.Close()
		}
	}
	cancel()
	wg.Wait()

	// 3. chats
	if c.chats > 0 {
		for _, closed := range []bool{false, true} {
			before, _ := child.stats()
			if err := wsChats(ctx, c, child.addr, closed); err != nil {
				return err
			}
			after, _ := child.stats()
			fmt.Printf("chats: server woke streams %d times from the change feed, %d from the full poll; %d stream reads\n",
				after.FeedWakes-before.FeedWakes, after.PollWakes-before.PollWakes, after.Fetches-before.Fetches)
		}
	}
	return nil
}

func waitAll(ctx context.Context, agents []*idleAgent, ch func(*idleAgent) <-chan struct{}, limit time.Duration) error {
	deadline := time.After(limit)
	for i, a := range agents {
		select {
		case <-ch(a):
		case <-deadline:
			return fmt.Errorf("only %d of %d within %s", i, len(agents), limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// wsChats runs c.chats customer/agent pairs for c.chatFor. Open loop: one
// message per second per chat. Closed loop: the next message as soon as the
// agent has the previous one.
func wsChats(ctx context.Context, c wsLoadConfig, addr string, closed bool) error {
	type pair struct{ cust, agent *websocket.Conn }
	pairs := make([]pair, c.chats)
	for i := range pairs {
		id := int64(100000 + i)
		ag, _, err := wsDialer(i).DialContext(ctx, "ws://"+addr+"/ws/agent", http.Header{"X-Agent": {strconv.FormatInt(id, 10)}})
		if err != nil {
			return err
		}
		defer ag.Close()
		if err := ag.WriteJSON(map[string]any{"type": "resume", "data": map[string]any{"streams": []any{map[string]any{"stream": hub.TicketStream(id)}}}}); err != nil {
			return err
		}
		tok := hub.SignWidgetToken(wsWidgetSecret, hub.WidgetToken{AccountID: c.account, WidgetID: "load", VisitorID: "v" + strconv.FormatInt(id, 10), Expires: time.Now().Add(time.Hour)})
		cu, _, err := wsDialer(i+1).DialContext(ctx, "ws://"+addr+"/ws/customer?token="+tok, nil)
		if err != nil {
			return err
		}
		defer cu.Close()
		pairs[i] = pair{cu, ag}
		for { // wait until the agent follows the ticket
			var f wsFrame
			if err := ag.ReadJSON(&f); err != nil {
				return err
			}
			if f.Type == "subscribed" {
				break
			}
		}
	}
	var mu sync.Mutex
	var lat, ackLat []time.Duration
	var sent, errs atomic.Int64
	runCtx, cancel := context.WithTimeout(ctx, c.chatFor)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range pairs {
		got := make(chan struct{}, 1)
		wg.Add(2)
		go func() { // agent side: measure
			defer wg.Done()
			for {
				var f wsFrame
				if err := p.agent.ReadJSON(&f); err != nil {
					return
				}
				if f.Type != "message.created" {
					continue
				}
				var d struct{ Body string }
				json.Unmarshal(f.Data, &d) //nolint:errcheck
				ns, _ := strconv.ParseInt(d.Body, 10, 64)
				l := time.Since(time.Unix(0, ns))
				mu.Lock()
				lat = append(lat, l)
				mu.Unlock()
				select {
				case got <- struct{}{}:
				default:
				}
			}
		}()
		go func() { // customer side: send; read acks so the queue drains
			defer wg.Done()
			go func() {
				for {
					var f wsFrame
					if err := p.cust.ReadJSON(&f); err != nil {
						return
					}
					if f.Type == "error" {
						errs.Add(1)
					}
					if ns, err := strconv.ParseInt(f.ID, 10, 64); f.Type == "ack" && err == nil {
						l := time.Since(time.Unix(0, ns))
						mu.Lock()
						ackLat = append(ackLat, l)
						mu.Unlock()
					}
				}
			}()
			if !closed {
				select { // spread the chats over the second
				case <-time.After(time.Duration(i) * time.Second / time.Duration(len(pairs))):
				case <-runCtx.Done():
					return
				}
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for runCtx.Err() == nil {
				now := strconv.FormatInt(time.Now().UnixNano(), 10)
				msg := map[string]any{"type": "chat.send", "id": now, "data": map[string]any{"body": now}}
				if err := p.cust.WriteJSON(msg); err != nil {
					return
				}
				sent.Add(1)
				var wait <-chan struct{} = got
				var t <-chan time.Time
				if !closed {
					wait, t = nil, tick.C
				}
				select {
				case <-wait:
				case <-t:
				case <-runCtx.Done():
				}
			}
		}()
	}
	<-runCtx.Done()
	time.Sleep(500 * time.Millisecond) // the last messages in flight
	for _, p := range pairs {
		p.agent.Close()
		p.cust.Close()
	}
	wg.Wait()
	slices.Sort(lat)
	slices.Sort(ackLat)
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	ackPct := func(q float64) time.Duration {
		if len(ackLat) == 0 {
			return 0
		}
		return ackLat[min(len(ackLat)-1, int(q*float64(len(ackLat))))].Round(10 * time.Microsecond)
	}
	mode := "open loop, 1 msg/s per chat"
	if closed {
		mode = "closed loop"
	}
	fmt.Printf("chats (%s): %d chats, %d sent, %d received in %s = %.0f msg/s; send→agent latency p50 %s p99 %s max %s; errors %d\n",
		mode, len(pairs), sent.Load(), len(lat), c.chatFor, float64(len(lat))/c.chatFor.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), cmp.Or(pct(1), 0).Round(10*time.Microsecond), errs.Load())
	fmt.Printf("chats (%s): send→ack (message stored and committed) p50 %s p99 %s\n", mode, ackPct(0.5), ackPct(0.99))
	return nil
}

// wsPublishContention measures publishing transactions per second with
// c.writers concurrent writers: each to its own stream, all to one hot
// stream, and the routing engine's pattern (own stream + the account's
// supervisor stream in one transaction).
func wsPublishContention(ctx context.Context, db *pgxpool.Pool, c wsLoadConfig) error {
	const each = 3 * time.Second
	for _, mode := range []string{"own stream", "one hot stream", "own + supervisor stream"} {
		var n atomic.Int64
		var lat []time.Duration
		var mu sync.Mutex
		runCtx, cancel := context.WithTimeout(ctx, each)
		var wg sync.WaitGroup
		for w := range c.writers {
			wg.Go(func() {
				for runCtx.Err() == nil {
					t0 := time.Now()
					err := pgx.BeginFunc(runCtx, db, func(tx pgx.Tx) error {
						own := hub.Event{AccountID: c.account, Stream: hub.AgentStream(int64(900000 + w)), Type: "bench", Data: w}
						sup := hub.Event{AccountID: c.account, Stream: hub.SupervisorStream(c.account), Type: "bench", Data: w}
						switch mode {
						case "own stream":
							return hub.Publish(runCtx, tx, own)
						case "one hot stream":
							return hub.Publish(runCtx, tx, sup)
						}
						if err := hub.Publish(runCtx, tx, own); err != nil {
							return err
						}
						return hub.Publish(runCtx, tx, sup)
					})
					if err == nil {
						n.Add(1)
						mu.Lock()
						lat = append(lat, time.Since(t0))
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		cancel()
		slices.Sort(lat)
		p := func(q float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(q*float64(len(lat))))].Round(10 * time.Microsecond)
		}
		fmt.Printf("publish (%d writers, %s): %.0f commits/s; commit latency p50 %s p99 %s\n",
			c.writers, mode, float64(n.Load())/each.Seconds(), p(0.5), p(0.99))
	}
	return nil
}

// ---- --lists: new tickets to the lists that show them ----

// wsLists connects c.conns agents (a c.viewers fraction following
// account:<id>, or all of them with c.allFollow), creates tickets at
// c.ticketRate for c.listsFor and reports what the viewers saw and what
// the server spent.
func wsLists(ctx context.Context, db *pgxpool.Pool, c wsLoadConfig, addr string) error {
	child, err := startWSChild(ctx, c, addr)
	if err != nil {
		return err
	}
	defer child.stop() //nolint:errcheck
	viewers := int(float64(c.conns) * c.viewers)
	followers := viewers
	if c.allFollow {
		followers = c.conns
	}
	fmt.Printf("loadgen ws --lists: %d idle agents, %d view All open, %d follow account:<id>; %.0f tickets/s for %s; %d CPUs, %s\n",
		c.conns, viewers, followers, c.ticketRate, c.listsFor, runtime.NumCPU(), runtime.Version())
	account := hub.AccountStream(c.account)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		received atomic.Int64 // ticket.created frames, all clients
		up       sync.WaitGroup
		done     sync.WaitGroup
	)
	conns := make([]*websocket.Conn, c.conns)
	start := time.Now()
	for i := range conns {
		id := int64(i + 1)
		ws, _, err := wsDialer(i).DialContext(ctx, "ws://"+addr+"/ws/agent", http.Header{"X-Agent": {strconv.FormatInt(id, 10)}})
		if err != nil {
			return fmt.Errorf("connect agent %d: %w", id, err)
		}
		conns[i] = ws
		viewer := i < viewers
		streams := []any{map[string]any{"stream": hub.AgentStream(id)}}
		if i < followers {
			streams = append(streams, map[string]any{"stream": account})
		}
		if err := ws.WriteJSON(map[string]any{"type": "resume", "data": map[string]any{"streams": streams}}); err != nil {
			return err
		}
		up.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			want := len(streams)
			for {
				_, r, err := ws.NextReader()
				if err != nil {
					if want > 0 {
						up.Done()
					}
					return
				}
				b, err := io.ReadAll(r)
				if err != nil {
					return
				}
				if want > 0 {
					if strings.Contains(string(b), `"type":"subscribed"`) {
						if want--; want == 0 {
							up.Done()
						}
					}
					continue
				}
				if !strings.Contains(string(b), `"type":"ticket.created"`) {
					continue
				}
				received.Add(1)
				if !viewer { // an agent not looking: the frame is only work
					continue
				}
				var f struct {
					Data struct {
						SentNS int64 `json:"sent_ns"`
					} `json:"data"`
				}
				if json.Unmarshal(b, &f) == nil && f.Data.SentNS > 0 {
					l := time.Since(time.Unix(0, f.Data.SentNS))
					mu.Lock()
					lat = append(lat, l)
					mu.Unlock()
				}
			}
		}()
		if i%200 == 199 { // do not flood the listen backlog
			time.Sleep(20 * time.Millisecond)
		}
	}
	up.Wait()
	fmt.Printf("lists: %d agents connected and following in %s\n", c.conns, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the connection burst settle
	before, err := child.stats()
	if err != nil {
		return err
	}
	selfBefore := cpuSeconds()

	// Create tickets: what web publishes for an unassigned ticket without a
	// team, in one transaction per ticket.
	var created int64
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.ticketRate))
	pubStart := time.Now()
	for time.Since(pubStart) < c.listsFor && runCtx.Err() == nil {
		<-tick.C
		created++
		data := map[string]any{"id": created, "subject": "Load ticket", "status": "new", "channel": "email", "sent_ns": time.Now().UnixNano()}
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			for _, s := range []string{hub.SupervisorStream(c.account), account} {
				if err := hub.Publish(ctx, tx, hub.Event{AccountID: c.account, Stream: s, Type: "ticket.created", Data: data}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	tick.Stop()
	pubFor := time.Since(pubStart)
	// Wait for the frames still queued (at most 30 s), then read the server.
	expect := created * int64(followers)
	for wait := time.Now(); received.Load() < expect && time.Since(wait) < 30*time.Second; {
		time.Sleep(50 * time.Millisecond)
	}
	drainFor := time.Since(pubStart) - pubFor
	after, err := child.stats()
	if err != nil {
		return err
	}
	selfCPU := cpuSeconds() - selfBefore
	cancel()
	for _, ws := range conns {
		ws.Close()
	}
	done.Wait()

	mu.Lock()
	slices.Sort(lat)
	n := len(lat)
	mu.Unlock()
	pct := func(q float64) time.Duration {
		if n == 0 {
			return 0
		}
		return lat[min(n-1, int(q*float64(n)))].Round(10 * time.Microsecond)
	}
	frames := after.EventsSent - before.EventsSent
	wall := pubFor + drainFor
	cpu := after.CPUSeconds - before.CPUAfter // not the stats' own GCs
	fmt.Printf("lists: %d tickets in %s (%.1f/s); ticket.created to the %d viewers: %d of %d, latency p50 %s p99 %s max %s\n",
		created, pubFor.Round(time.Millisecond), float64(created)/pubFor.Seconds(), viewers, n, created*int64(viewers), pct(0.5), pct(0.99), pct(1))
	fmt.Printf("lists: server sent %d event frames (%d received by all clients) in %s = %.0f frames/s; server CPU %.1f s = %.0f%% of one core; slow consumers closed %d; load generator CPU %.1f s\n",
		frames, received.Load(), wall.Round(time.Millisecond), float64(frames)/wall.Seconds(), cpu, 100*cpu/wall.Seconds(), after.SlowClosed-before.SlowClosed, selfCPU)
	return nil
}
