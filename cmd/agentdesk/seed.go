package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk/postgres"
)

func init() {
	register("seed", "load demo data (--demo) or a benchmark data set (--customers N --messages M)", runSeed)
}

// seedConfig is what `seed` reads from flags and AGENTDESK_* variables.
type seedConfig struct {
	demo        bool
	ifEmpty     bool
	printLogins bool
	customers   int
	messages    int
	companies   int
	account     int64
	seed        uint64
	months      int
	progress    bool
}

func runSeed(ctx context.Context, args []string) error {
	fs := newFlagSet("seed")
	var c seedConfig
	dbURL := databaseURLFlag(fs)
	fs.BoolVar(&c.demo, "demo", false, "create the demo operation: account, users, teams, queues, reasons and 6 months of history (once: nothing is added when the demo account exists)")
	fs.BoolVar(&c.ifEmpty, "if-empty", false, "do nothing when the database already has an account (make run uses this)")
	fs.BoolVar(&c.printLogins, "print-logins", false, "print the demo logins and exit")
	fs.IntVar(&c.customers, "customers", 0, "add a data set of this many customers (benchmarks); needs --messages")
	fs.IntVar(&c.messages, "messages", 0, "timeline messages of the --customers data set, spread over its tickets")
	fs.IntVar(&c.companies, "companies", -1, "companies of the --customers data set (default customers/50)")
	fs.Int64Var(&c.account, "account", 0, "account for --customers (default: the demo account, created when missing)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed; the same seed on the same day gives the same data")
	fs.IntVar(&c.months, "months", 6, "months of history to generate")
	fs.BoolVar(&c.progress, "progress", true, "show a progress bar on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.printLogins {
		// With a database at hand, say so when the demo users are not in it
		// (DATABASE_URL pointing at an existing installation).
		if *dbURL != "" {
			if db, err := postgres.Open(ctx, *dbURL, 1); err == nil {
				var n int
				err := db.QueryRow(ctx, `SELECT count(*) FROM agents WHERE email LIKE '%@`+demoDomain+`'`).Scan(&n)
				db.Close()
				if err == nil && n == 0 {
					fmt.Println("This database has no demo users: sign in with its own users (agentdesk token create makes an API token).")
					return nil
				}
			}
		}
		printDemoLogins(os.Stdout)
		return nil
	}
	if !c.demo && c.customers <= 0 {
		fs.Usage()
		return errors.New("seed: give --demo and/or --customers N --messages M")
	}
	if c.customers < 0 || c.messages < 0 || c.months < 1 || c.months > 60 {
		return errors.New("seed: --customers and --messages must not be negative, --months must be 1-60")
	}
	if *dbURL == "" {
		return errors.New("seed: --database-url (or DATABASE_URL) is required")
	}
	db, err := postgres.Open(ctx, *dbURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	if c.ifEmpty {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
			return fmt.Errorf("seed: %w (run `agentdesk migrate up` first)", err)
		}
		if n > 0 {
			fmt.Fprintln(os.Stderr, "seed: the database already has data; nothing to do")
			return nil
		}
	}
	return seed(ctx, db, c)
}

// seed creates the demo organisation when asked or needed, then the
// generated history into it.
func seed(ctx context.Context, db *pgxpool.Pool, c seedConfig) error {
	start := time.Now()
	store := postgres.NewStore(db)
	acct := c.account
	if acct == 0 {
		if err := db.QueryRow(ctx, `SELECT id FROM accounts WHERE name = $1 ORDER BY id LIMIT 1`, demoAccountName).Scan(&acct); err != nil {
			acct = 0
		}
	}
	created := acct == 0
	if created {
		var err error
		if acct, err = createDemoOrg(ctx, store); err != nil {
			return fmt.Errorf("seed: demo organisation: %w", err)
		}
		fmt.Fprintf(os.Stderr, "seed: created account %q (id %d) with its users, teams, reasons and queues\n", demoAccountName, acct)
	}
	org, err := loadOrg(ctx, db, acct)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	now := time.Now().UTC()
	if c.demo && !created && c.account == 0 {
		// Seeding the demo twice would double its customers and history.
		fmt.Fprintf(os.Stderr, "seed: the demo account exists already (id %d); its history is not added again\n", acct)
	} else if c.demo {
		g := genConfig{customers: demoCustomers, companies: demoCompanies, messages: demoMessages, months: c.months, seed: c.seed, now: now, tasks: true}
		st, err := generate(ctx, db, org, g, nil)
		if err != nil {
			return fmt.Errorf("seed: demo history: %w", err)
		}
		fmt.Fprintf(os.Stderr, "seed: demo history: %s\n", st)
	}
	if c.customers > 0 {
		companies := c.companies
		if companies < 0 {
			companies = c.customers / 50
		}
		g := genConfig{customers: c.customers, companies: companies, messages: c.messages, months: c.months, seed: c.seed + 1, now: now}
		var bar *progressBar
		if c.progress {
			bar = newProgressBar(os.Stderr)
		}
		st, err := generate(ctx, db, org, g, bar)
		if err != nil {
			return fmt.Errorf("seed: data set: %w", err)
		}
		fmt.Fprintf(os.Stderr, "seed: data set: %s\n", st)
	}
	fmt.Fprintf(os.Stderr, "seed: done in %s\n", time.Since(start).Round(10*time.Millisecond))
	return nil
}
