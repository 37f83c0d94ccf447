package main

import (
	"context"
	"errors"
	"fmt"

	"agentdesk/agentdesk/postgres"
)

func init() {
	register("migrate", "apply database migrations (up) or list them (status)", runMigrate)
}

func runMigrate(ctx context.Context, args []string) error {
	fs := newFlagSet("migrate [up|status]")
	dbURL := databaseURLFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("migrate: --database-url (or DATABASE_URL) is required")
	}
	action := "up"
	if fs.NArg() > 0 {
		action = fs.Arg(0)
	}
	db, err := postgres.Open(ctx, *dbURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	switch action {
	case "up":
		done, err := postgres.Migrate(ctx, db)
		if err != nil {
			return err
		}
		if len(done) == 0 {
			fmt.Println("migrate: database is up to date")
		} else {
			fmt.Printf("migrate: applied %v\n", done)
		}
	case "status":
		st, err := postgres.Status(ctx, db)
		if err != nil {
			return err
		}
		for _, s := range st {
			mark := "pending"
			if s.Applied {
				mark = "applied"
			}
			if s.River {
				fmt.Printf("river/%03d_%s\t%s\n", s.Version, s.Name, mark)
				continue
			}
			fmt.Printf("%03d_%s\t%s\n", s.Version, s.Name, mark)
		}
	default:
		return fmt.Errorf("migrate: unknown action %q (want up or status)", action)
	}
	return nil
}
