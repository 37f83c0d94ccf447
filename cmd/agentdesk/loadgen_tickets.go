package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func init() {
	registerLoadgen("tickets", "ticket create (with first message), agent ticket lists and customer timelines through the store: p50/p99 latency", loadgenTickets)
}

// loadgenTickets measures the desk's hot paths on an existing data set
// (agentdesk seed --customers N --messages M): opening a ticket with its
// first message, the lists an agent opens all day (my open tickets, the
// unassigned queue, everything newest first, a team's tickets) and a
// customer's timeline. The tickets it creates are deleted again unless --keep.
func loadgenTickets(ctx context.Context, args []string) error {
	fs := newFlagSet("loadgen tickets")
	dbURL := databaseURLFlag(fs)
	account := fs.Int64("account", 0, "account to measure (default: the one with the most tickets)")
	creates := fs.Int("creates", 2000, "tickets to create")
	lists := fs.Int("lists", 2000, "list requests of each kind")
	workers := fs.Int("workers", 4, "concurrent callers")
	keep := fs.Bool("keep", false, "keep the created tickets")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("loadgen tickets: --database-url (or DATABASE_URL) is required")
	}
	db, err := postgres.Open(ctx, *dbURL, int32(*workers+2))
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewStore(db)
	if *account == 0 {
		err := db.QueryRow(ctx, `SELECT account_id FROM tickets GROUP BY account_id ORDER BY count(*) DESC LIMIT 1`).Scan(account)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("loadgen tickets: no tickets yet; run agentdesk seed --customers N --messages M first")
		}
		if err != nil {
			return err
		}
	}
	var customers []int64
	rows, _ := db.Query(ctx, `SELECT id FROM customers WHERE account_id = $1 AND merged_into IS NULL ORDER BY random() LIMIT 5000`, *account)
	if customers, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(customers) == 0 {
		return fmt.Errorf("loadgen tickets: customers of account %d: %v", *account, err)
	}
	var actors []agentdesk.Actor
	rows, _ = db.Query(ctx, `SELECT a.id, a.role, coalesce((SELECT array_agg(team_id) FROM team_members m WHERE m.agent_id = a.id), '{}')
		FROM agents a WHERE a.account_id = $1 AND a.active`, *account)
	actors, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.Actor, error) {
		a := agentdesk.Actor{AccountID: *account}
		err := r.Scan(&a.AgentID, &a.Role, &a.TeamIDs)
		return a, err
	})
	if err != nil || len(actors) == 0 {
		return fmt.Errorf("loadgen tickets: agents of account %d: %v", *account, err)
	}
	var tickets, messages int64
	db.QueryRow(ctx, `SELECT (SELECT count(*) FROM tickets WHERE account_id = $1), (SELECT count(*) FROM messages WHERE account_id = $1)`, *account).Scan(&tickets, &messages)
	fmt.Printf("account %d: %d tickets, %d messages, %d agents; %d workers\n", *account, tickets, messages, len(actors), *workers)

	agentOnly := slices.DeleteFunc(slices.Clone(actors), func(a agentdesk.Actor) bool { return a.Role != agentdesk.RoleAgent })
	if len(agentOnly) == 0 {
		agentOnly = actors
	}
	open := []agentdesk.Status{agentdesk.StatusNew, agentdesk.StatusOpen, agentdesk.StatusPending, agentdesk.StatusOnHold}
	pick := func(r *rand.Rand) agentdesk.Actor { return agentOnly[r.IntN(len(agentOnly))] }

	var (
		mu      sync.Mutex
		created []int64
	)
	ops := []struct {
		name string
		n    int
		run  func(r *rand.Rand, i int) error
	}{
		{"ticket create + first message", *creates, func(r *rand.Rand, i int) error {
			a := pick(r)
			t := &agentdesk.Ticket{Subject: fmt.Sprintf("loadgen ticket %d", i), CustomerID: customers[r.IntN(len(customers))], Channel: agentdesk.ChannelEmail, Tags: []string{"loadgen"}}
			m := &agentdesk.Message{Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Subject: t.Subject, Body: "Hello, my order has not arrived yet. Can you check where it is? Thanks"}
			err := store.CreateTicket(ctx, a, t, m)
			if err == nil {
				mu.Lock()
				created = append(created, t.ID)
				mu.Unlock()
			}
			return err
		}},
		{"list: my open tickets", *lists, func(r *rand.Rand, _ int) error {
			a := pick(r)
			_, _, err := store.Tickets(ctx, a, agentdesk.TicketFilter{AssigneeID: &a.AgentID, Status: open})
			return err
		}},
		{"list: unassigned open queue", *lists, func(r *rand.Rand, _ int) error {
			_, _, err := store.Tickets(ctx, pick(r), agentdesk.TicketFilter{Status: open, Unassigned: true})
			return err
		}},
		{"list: all visible, newest first", *lists, func(r *rand.Rand, _ int) error {
			_, _, err := store.Tickets(ctx, pick(r), agentdesk.TicketFilter{})
			return err
		}},
		{"list: a customer's tickets", *lists, func(r *rand.Rand, _ int) error {
			_, _, err := store.Tickets(ctx, pick(r), agentdesk.TicketFilter{CustomerID: &customers[r.IntN(len(customers))]})
			return err
		}},
		{"customer timeline (50 newest)", *lists, func(r *rand.Rand, _ int) error {
			_, _, err := store.CustomerTimeline(ctx, pick(r), customers[r.IntN(len(customers))], agentdesk.Page{})
			return err
		}},
	}
	for _, op := range ops {
		lat, err := ticketsMeasure(op.n, *workers, op.run)
		if err != nil {
			return fmt.Errorf("%s: %w", op.name, err)
		}
		fmt.Printf("%-32s n=%-6d p50 %-8v p95 %-8v p99 %-8v max %v\n", op.name, len(lat), ticketsPct(lat, 50), ticketsPct(lat, 95), ticketsPct(lat, 99), lat[len(lat)-1])
	}
	if !*keep && len(created) > 0 {
		err := postgres.InTx(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM messages WHERE account_id = $1 AND ticket_id = ANY($2)`, *account, created); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM tickets WHERE account_id = $1 AND id = ANY($2)`, *account, created)
			return err
		})
		if err != nil {
			return fmt.Errorf("remove the created tickets: %w", err)
		}
	}
	return nil
}

// ticketsMeasure runs n calls of fn on workers goroutines and returns the sorted
// latencies.
func ticketsMeasure(n, workers int, fn func(r *rand.Rand, i int) error) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	errs := make(chan error, workers)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				start := time.Now()
				if err := fn(r, k); err != nil {
					errs <- err
					return
				}
				lat[k] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	slices.Sort(lat)
	return lat, nil
}

func ticketsPct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := (len(sorted)*p + 99) / 100
	if k < 1 {
		k = 1
	}
	return sorted[k-1].Round(10 * time.Microsecond)
}
