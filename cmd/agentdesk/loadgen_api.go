package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

func init() {
	registerLoadgen("api", "the foundation's hot paths over HTTP against a running server: ticket create, customer lookup by email/phone, an agent's ticket lists; p50/p99", loadgenAPI)
}

// loadgenAPI measures what a client of the REST API sees, end to end: JSON,
// authentication, the handler and the store, against `agentdesk serve` on a
// database seeded with a data set. It mints an API token for the run (revoked
// at the end), signs in as an agent for the "assignee=me" lists, and deletes
// the tickets it created unless --keep.
func loadgenAPI(ctx context.Context, args []string) error {
	fs := newFlagSet("loadgen api")
	dbURL := databaseURLFlag(fs)
	base := fs.String("url", "http://localhost:8080", "server to measure")
	n := fs.Int("n", 2000, "requests of each kind")
	workers := fs.Int("workers", 1, "concurrent clients")
	login := fs.String("login", "agent@demo.agentdesk.local:"+demoAgentPassword, "agent email:password for the agent's lists")
	keep := fs.Bool("keep", false, "keep the tickets created")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("loadgen api: --database-url (or DATABASE_URL) of the server's database is required, to sample customers and mint a token")
	}
	db, err := postgres.Open(ctx, *dbURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewStore(db)
	var acct int64
	if err := db.QueryRow(ctx, `SELECT account_id FROM customers GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`).Scan(&acct); err != nil {
		return errors.New("loadgen api: no customers; run agentdesk seed --customers N --messages M first")
	}
	type ident struct {
		kind, value string
		customer    int64
	}
	rows, _ := db.Query(ctx, `SELECT kind, value, customer_id FROM identities WHERE account_id = $1 AND kind IN ('email', 'phone')
		ORDER BY random() LIMIT 10000`, acct)
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ident, error) {
		var i ident
		return i, r.Scan(&i.kind, &i.value, &i.customer)
	})
	if err != nil || len(ids) == 0 {
		return fmt.Errorf("loadgen api: identities of account %d: %v", acct, err)
	}
	byKind := map[string][]ident{}
	for _, i := range ids {
		byKind[i.kind] = append(byKind[i.kind], i)
	}

	operator := agentdesk.Actor{AccountID: acct, Role: agentdesk.RoleAdmin}
	tok, secret, err := web.CreateAPIToken(ctx, store, operator, fmt.Sprintf("loadgen-%d", time.Now().UnixNano()), agentdesk.RoleAdmin, []string{"read", "write"})
	if err != nil {
		return fmt.Errorf("loadgen api: token: %w", err)
	}
	defer store.RevokeAPIToken(context.Background(), acct, tok.ID)
	tr := &http.Transport{MaxIdleConnsPerHost: *workers + 2}
	tokenClient := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	jar, _ := cookiejar.New(nil)
	agentClient := &http.Client{Transport: tr, Timeout: 30 * time.Second, Jar: jar}
	email, password, _ := strings.Cut(*login, ":")
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	if _, err := call(ctx, agentClient, "POST", *base+"/api/v1/auth/login", "", body, http.StatusOK); err != nil {
		return fmt.Errorf("loadgen api: sign in as %s: %w", email, err)
	}

	var mu sync.Mutex
	var created []int64
	ops := []struct {
		name string
		run  func(r *rand.Rand) error
	}{
		{"POST /tickets (with first message)", func(r *rand.Rand) error {
			req, _ := json.Marshal(map[string]any{"subject": "Where is my order?", "channel": "email", "customer_id": ids[r.IntN(len(ids))].customer,
				"message": map[string]any{"direction": "in", "body": "Hello, my order has not arrived yet. Can you check where it is?"}})
			out, err := call(ctx, tokenClient, "POST", *base+"/api/v1/tickets", secret, req, http.StatusCreated)
			if err == nil {
				var t struct{ ID int64 }
				json.Unmarshal(out, &t)
				mu.Lock()
				created = append(created, t.ID)
				mu.Unlock()
			}
			return err
		}},
		{"GET /customers?q=<email>", func(r *rand.Rand) error {
			i := byKind["email"][r.IntN(len(byKind["email"]))]
			_, err := call(ctx, tokenClient, "GET", *base+"/api/v1/customers?q="+url.QueryEscape(i.value), secret, nil, http.StatusOK)
			return err
		}},
		{"GET /customers?q=<phone>", func(r *rand.Rand) error {
			i := byKind["phone"][r.IntN(len(byKind["phone"]))]
			_, err := call(ctx, tokenClient, "GET", *base+"/api/v1/customers?q="+url.QueryEscape(i.value), secret, nil, http.StatusOK)
			return err
		}},
		{"GET /tickets?assignee=me&status=open…", func(*rand.Rand) error {
			_, err := call(ctx, agentClient, "GET", *base+"/api/v1/tickets?assignee=me&status=new,open,pending,on_hold", "", nil, http.StatusOK)
			return err
		}},
		{"GET /tickets?assignee=me", func(*rand.Rand) error {
			_, err := call(ctx, agentClient, "GET", *base+"/api/v1/tickets?assignee=me", "", nil, http.StatusOK)
			return err
		}},
	}
	fmt.Printf("loadgen api: %s, account %d, %d requests of each kind, %d client(s)\n", *base, acct, *n, *workers)
	fmt.Printf("%-40s %8s %8s %8s %8s %8s\n", "request", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s")
	for _, op := range ops {
		lat, elapsed, err := runWorkers(*n, *workers, op.run)
		if err != nil {
			return fmt.Errorf("loadgen api: %s: %w", op.name, err)
		}
		slices.Sort(lat)
		q := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
		}
		fmt.Printf("%-40s %8.2f %8.2f %8.2f %8.2f %8.0f\n", op.name, q(0.5), q(0.9), q(0.99), q(1), float64(len(lat))/elapsed.Seconds())
	}
	if !*keep && len(created) > 0 {
		_, err := db.Exec(ctx, `WITH m AS (DELETE FROM messages WHERE account_id = $1 AND ticket_id = ANY($2))
			DELETE FROM tickets WHERE account_id = $1 AND id = ANY($2)`, acct, created)
		if err != nil {
			fmt.Printf("loadgen api: could not delete the %d tickets created: %v\n", len(created), err)
		}
	}
	return nil
}

// runWorkers runs op n times on w goroutines and returns every latency.
func runWorkers(n, w int, op func(*rand.Rand) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next int64 = -1
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for g := range w {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 42))
			for {
				mu.Lock()
				next++
				i := next
				stop := first != nil
				mu.Unlock()
				if i >= int64(n) || stop {
					return
				}
				t := time.Now()
				if err := op(r); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), first
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// call makes one request and checks its status; bearer, when set, is an API
// token.
func call(ctx context.Context, c *http.Client, method, u, bearer string, body []byte, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s", method, u, res.StatusCode, bytes.TrimSpace(out))
	}
	return out, nil
}
