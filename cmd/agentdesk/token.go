package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

func init() {
	register("token", "manage API tokens: token create --name N --role R", runToken)
}

func runToken(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("token: usage: agentdesk token create --name NAME --role agent|supervisor|admin [--scopes read,write] [--account ID]")
	}
	fs := newFlagSet("token create")
	dbURL := databaseURLFlag(fs)
	name := fs.String("name", "", "token name (unique per account)")
	role := fs.String("role", "agent", "role the token acts with: agent, supervisor or admin")
	scopes := fs.String("scopes", "read,write", "comma-separated scopes: read, write")
	account := fs.Int64("account", 0, "account id (default: the only or first account)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *dbURL == "" {
		return errors.New("token: --database-url (or DATABASE_URL) is required")
	}
	db, err := postgres.Open(ctx, *dbURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	acct := *account
	if acct == 0 {
		if err := db.QueryRow(ctx, `SELECT id FROM accounts ORDER BY id LIMIT 1`).Scan(&acct); err != nil {
			return errors.New("token: no account yet; run `agentdesk seed` or create one first")
		}
	}
	// The command line is the operator: it may mint any role.
	operator := agentdesk.Actor{AccountID: acct, Role: agentdesk.RoleAdmin}
	t, secret, err := web.CreateAPIToken(ctx, postgres.NewStore(db), operator, *name, agentdesk.Role(*role), strings.Split(*scopes, ","))
	if err != nil {
		return err
	}
	fmt.Printf("token %d %q (%s, %s):\n%s\n", t.ID, t.Name, t.Role, strings.Join(t.Scopes, ","), secret)
	return nil
}
