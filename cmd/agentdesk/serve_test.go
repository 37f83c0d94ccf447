package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"agentdesk/agentdesk"
)

// serveChildEnv makes this test binary behave as `agentdesk serve`: the
// restart test runs the real command, signal handling and shutdown included,
// in a process of its own it can send SIGTERM to.
const serveChildEnv = "AGENTDESK_SERVE_CHILD_ARGS"

// TestServeChildProcess is not a test: it is the server process of
// TestServeSIGTERMMidLoad, started from the same binary.
func TestServeChildProcess(t *testing.T) {
	args := os.Getenv(serveChildEnv)
	if args == "" {
		return
	}
	os.Args = append([]string{"agentdesk", "serve"}, strings.Fields(args)...)
	main()
}

// TestServeSIGTERMMidLoad runs `agentdesk serve` on a fresh database, fires
// concurrent ticket creates (each with its first message), and sends SIGTERM
// in the middle. Every request answered 2xx must have its ticket and message
// in the database, no ticket may exist without its first message (no partial
// writes), a request in flight at the signal must complete, and the process
// must exit cleanly.
func TestServeSIGTERMMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	t.Parallel()
	ctx := context.Background()
	fx := newAccountDB(t, "Restart Co", "restart.test", 4)
	url, db, acct := fx.url, fx.db, fx.acct
	token := fx.token(t, "load", agentdesk.RoleAgent)
	var customer int64
	if err := db.QueryRow(ctx, `INSERT INTO customers (account_id, name) VALUES ($1, 'Load') RETURNING id`, acct.ID).Scan(&customer); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	base := "http://" + addr
	var logs syncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChildProcess$")
	cmd.Env = append(os.Environ(), serveChildEnv+"=--addr "+addr+" --database-url "+url+" --shutdown-timeout 2m --db-max-conns 10")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	}()
	waitReady(t, base, exited)

	create := func(c *http.Client, subject string, body io.Reader, trace *httptrace.ClientTrace) (int64, error) {
		if body == nil {
			body = strings.NewReader(ticketBody(subject, customer))
		}
		req, _ := http.NewRequest("POST", base+"/api/v1/tickets", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		if trace != nil {
			req.Header.Set("Expect", "100-continue")
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode/100 != 2 {
			return 0, fmt.Errorf("status %d: %s", res.StatusCode, raw)
		}
		var tk struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(raw, &tk); err != nil || tk.ID == 0 {
			return 0, fmt.Errorf("decode %s: %v", raw, err)
		}
		return tk.ID, nil
	}

	// The load: workers creating tickets until the server stops answering.
	var (
		mu       sync.Mutex
		created  = map[int64]string{} // ticket id → subject, for every 2xx
		failures = map[string]int{}   // error text → count, for the log
		wg       sync.WaitGroup
		enough   = make(chan struct{})
		once     sync.Once
	)
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 2 * time.Minute}
			for i := 0; i < 5000; i++ {
				subject := fmt.Sprintf("load %d-%d", w, i)
				id, err := create(c, subject, nil, nil)
				mu.Lock()
				if err == nil {
					created[id] = subject
					if len(created) >= 60 {
						once.Do(func() { close(enough) })
					}
				} else {
					failures[shortErr(err)]++
				}
				mu.Unlock()
				if err != nil && isRefused(err) {
					return // the listener is closed: the server is going away
				}
			}
		}()
	}

	select {
	case <-enough:
	case err := <-exited:
		t.Fatalf("server exited early: %v", err)
	}

	// The request in flight at the signal: its headers are in, the handler
	// has started reading the body (the server sent 100 Continue), and the
	// rest of the body only arrives once shutdown has begun.
	pr, pw := io.Pipe()
	handlerReading := make(chan struct{})
	var slowOnce sync.Once
	trace := &httptrace.ClientTrace{Got100Continue: func() { slowOnce.Do(func() { close(handlerReading) }) }}
	slowBody := ticketBody("in flight", customer)
	type result struct {
		id  int64
		err error
	}
	slow := make(chan result, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}, Timeout: 3 * time.Minute}
		id, err := create(c, "in flight", pr, trace)
		slow <- result{id, err}
	}()
	go pw.Write([]byte(slowBody[:len(slowBody)/2])) //nolint:errcheck // read by the transport once 100 Continue arrives

	select {
	case <-handlerReading:
	case r := <-slow:
		t.Fatalf("slow request ended before the signal: %+v", r)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutdown has begun once the listener refuses connections; only then
	// does the in-flight request send the rest of its body.
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := pw.Write([]byte(slowBody[len(slowBody)/2:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-slow
	if r.err != nil {
		t.Fatalf("the request in flight at SIGTERM did not complete: %v", r.err)
	}
	mu.Lock()
	created[r.id] = "in flight"
	mu.Unlock()

	wg.Wait()
	if err := <-exited; err != nil {
		t.Fatalf("server exit: %v", err)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("no graceful shutdown in the log")
	}
	t.Logf("%d tickets answered 2xx; failures after the signal: %v", len(created), failures)

	// Every answered create is in the database with its first message.
	for id, subject := range created {
		var gotSubject string
		var messages int
		err := db.QueryRow(ctx, `SELECT subject, (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id AND m.body = 'first message of ' || t.subject)
			FROM tickets t WHERE t.account_id = $1 AND t.id = $2`, acct.ID, id).Scan(&gotSubject, &messages)
		if err != nil || gotSubject != subject || messages != 1 {
			t.Errorf("ticket %d (%s): subject %q, %d first messages, err %v", id, subject, gotSubject, messages, err)
		}
	}
	// And nothing half-written: no ticket without its first message.
	var orphans, total int
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id)), count(*)
		FROM tickets t WHERE t.account_id = $1`, acct.ID).Scan(&orphans, &total); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%d of %d tickets have no first message", orphans, total)
	}
	if total < len(created) {
		t.Fatalf("%d tickets stored, %d answered 2xx", total, len(created))
	}
}

func ticketBody(subject string, customer int64) string {
	raw, _ := json.Marshal(map[string]any{
		"subject": subject, "customer_id": customer, "channel": "email",
		"message": map[string]any{"direction": "in", "body": "first message of " + subject},
	})
	return string(raw)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls /readyz until the server answers 200 or exits.
func waitReady(t *testing.T, base string, exited chan error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 1200; i++ {
		select {
		case err := <-exited:
			t.Fatalf("server exited before it was ready: %v", err)
		default:
		}
		if res, err := c.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server not ready after a minute")
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// syncBuffer collects the child's output from two pipes at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
