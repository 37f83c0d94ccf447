package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/web"
)

// TestTwoServeProcessesShareRouting runs two `agentdesk serve` processes on
// one database, each with its own routing engine. An integration queues
// contacts through both; agents signed in on either accept their offers
// through either and complete them, while a checker reads the database
// again and again. Asserted from the database: no agent ever holds more than
// their capacity, no task is assigned twice, every task ends completed, and
// each task's state is that of its last event.
func TestTwoServeProcessesShareRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	t.Parallel()
	ctx := context.Background()
	a := newAccountDB(t, "Two Nodes Co", "two.test", 6)
	db, store, acct, url := a.db, a.store, a.acct, a.url
	token := a.token(t, "telephony bridge", agentdesk.RoleSupervisor)
	var reason int64
	if err := db.QueryRow(ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, 'contact', 'Question') RETURNING id`, acct.ID).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	const (
		agents   = 10
		capacity = 2
		tasks    = 200
	)
	hash, err := web.HashPassword("two-nodes", web.PasswordParams{Memory: 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	agentIDs := make([]int64, agents)
	for i := range agents {
		a := &agentdesk.Agent{Email: fmt.Sprintf("agent%d@two.test", i), Name: fmt.Sprintf("Agent %d", i), Role: agentdesk.RoleAgent,
			Capacity: map[agentdesk.Channel]int{agentdesk.ChannelChat: capacity}}
		if err := store.CreateAgent(ctx, acct.ID, a, hash); err != nil {
			t.Fatal(err)
		}
		agentIDs[i] = a.ID
	}

	nodes := []string{startServeChild(t, url, "", "--db-max-conns 10"), startServeChild(t, url, "", "--db-max-conns 10")}

	// Every agent signs in on one node and goes available.
	clients := make([]*http.Client, agents)
	for i := range agents {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Jar: jar, Timeout: time.Minute}
		node := nodes[i%2]
		mustCall(t, clients[i], "POST", node+"/api/v1/auth/login", "", map[string]string{"email": fmt.Sprintf("agent%d@two.test", i), "password": "two-nodes"}, 200)
		mustCall(t, clients[i], "PUT", node+"/api/v1/presence", "", map[string]string{"state": "available"}, 200)
	}

	// The checker: capacity and double assignment, from the database, all
	// through the run.
	stop := make(chan struct{})
	var checks, violations atomic.Int64
	var firstViolation atomic.Value
	checkerDone := make(chan struct{})
	go func() {
		defer close(checkerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if msg := routingViolation(ctx, db, capacity); msg != "" {
				violations.Add(1)
				firstViolation.CompareAndSwap(nil, msg)
			}
			checks.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// Agents: take every offer made to them (seen in the database, as the
	// desk sees it over its websocket), accept and complete it through
	// either node.
	var completed atomic.Int64
	var agentsWG sync.WaitGroup
	errs := make(chan error, agents+4)
	for i := range agents {
		agentsWG.Add(1)
		go func() {
			defer agentsWG.Done()
			turn := i
			for completed.Load() < tasks {
				select {
				case <-stop:
					return
				default:
				}
				var id int64
				err := db.QueryRow(ctx, `SELECT id FROM tasks WHERE account_id = $1 AND offered_to = $2 AND state = 'offered' ORDER BY id LIMIT 1`,
					acct.ID, agentIDs[i]).Scan(&id)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				turn++
				node := nodes[turn%2]
				if code, body := httpCall(clients[i], "POST", fmt.Sprintf("%s/api/v1/tasks/%d/accept", node, id), "", nil); code != 200 {
					errs <- fmt.Errorf("agent %d accept %d: %d %s", i, id, code, body)
					return
				}
				node = nodes[(turn+1)%2]
				if code, body := httpCall(clients[i], "POST", fmt.Sprintf("%s/api/v1/tasks/%d/complete", node, id), "",
					map[string]any{"contact_reason_id": reason, "resolution_code": "solved"}); code != 200 {
					errs <- fmt.Errorf("agent %d complete %d: %d %s", i, id, code, body)
					return
				}
				completed.Add(1)
			}
		}()
	}

	// The integration queues contacts through both nodes at once.
	var producers sync.WaitGroup
	for p := range 4 {
		producers.Add(1)
		go func() {
			defer producers.Done()
			c := &http.Client{Timeout: time.Minute}
			for n := p; n < tasks; n += 4 {
				if code, body := httpCall(c, "POST", nodes[n%2]+"/api/v1/tasks", token, map[string]any{"channel": "chat",
					"attributes": map[string]any{"n": n}}); code != 201 {
					errs <- fmt.Errorf("create task %d: %d %s", n, code, body)
					return
				}
			}
		}()
	}
	producers.Wait()

	deadline := time.After(3 * time.Minute)
	for completed.Load() < tasks {
		select {
		case err := <-errs:
			close(stop)
			t.Fatal(err)
		case <-deadline:
			close(stop)
			t.Fatalf("only %d of %d tasks completed", completed.Load(), tasks)
		case <-time.After(20 * time.Millisecond):
		}
	}
	close(stop)
	agentsWG.Wait()
	<-checkerDone
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if v := violations.Load(); v > 0 {
		t.Fatalf("%d of %d database snapshots broke a rule; first: %v", v, checks.Load(), firstViolation.Load())
	}
	if msg := routingViolation(ctx, db, capacity); msg != "" {
		t.Fatal(msg)
	}
	var done, offeredBy2 int
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'completed') FROM tasks WHERE account_id = $1`, acct.ID).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if done != tasks {
		t.Fatalf("%d tasks completed, want %d", done, tasks)
	}
	// Both engines did the offering (not one node idle while the other
	// worked): offers are made by whichever dispatcher claims the task, so
	// this reads which agents got work, spread over all of them.
	if err := db.QueryRow(ctx, `SELECT count(DISTINCT agent_id) FROM tasks WHERE account_id = $1`, acct.ID).Scan(&offeredBy2); err != nil {
		t.Fatal(err)
	}
	if offeredBy2 != agents {
		t.Errorf("work went to %d of %d agents", offeredBy2, agents)
	}
	t.Logf("%d tasks through two processes; %d database snapshots checked", tasks, checks.Load())
}

// routingViolation reads the database once and describes the first broken
// rule: an agent holding more tasks than their capacity, a task assigned
// twice, a load counter out of step with the tasks, or a task whose state
// is not that of its last event.
func routingViolation(ctx context.Context, db *pgxpool.Pool, capacity int) string {
	var agent int64
	var held, load int
	err := db.QueryRow(ctx, `
SELECT p.agent_id, count(t.id), p.load_chat
FROM agent_presence p
LEFT JOIN tasks t ON (t.state = 'offered' AND t.offered_to = p.agent_id) OR (t.state = 'assigned' AND t.agent_id = p.agent_id)
GROUP BY p.agent_id, p.load_chat
HAVING count(t.id) > $1 OR p.load_chat > $1 OR p.load_chat <> count(t.id)
LIMIT 1`, capacity).Scan(&agent, &held, &load)
	if err == nil {
		return fmt.Sprintf("agent %d holds %d tasks, load counter %d, capacity %d", agent, held, load, capacity)
	}
	var task int64
	var n int
	if err := db.QueryRow(ctx, `
SELECT task_id, count(*) FROM task_events WHERE from_state = 'offered' AND to_state = 'assigned'
GROUP BY task_id HAVING count(*) > 1 LIMIT 1`).Scan(&task, &n); err == nil {
		return fmt.Sprintf("task %d assigned %d times", task, n)
	}
	if err := db.QueryRow(ctx, `
SELECT t.id FROM tasks t
WHERE t.state <> (SELECT e.to_state FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1) LIMIT 1`).Scan(&task); err == nil {
		return fmt.Sprintf("task %d: state is not that of its last event", task)
	}
	return ""
}

// httpCall sends a JSON request (bearer token optional) and returns the status
// and body.
func httpCall(c *http.Client, method, url, bearer string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err.Error()
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

func mustCall(t *testing.T, c *http.Client, method, url, bearer string, body any, want int) {
	t.Helper()
	if code, raw := httpCall(c, method, url, bearer, body); code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, url, code, want, raw)
	}
}
