package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// TestTicketListsUseTheirIndexes EXPLAINs the list queries exactly as the
// store builds them, on enough rows (several accounts, teams, assignees; most
// tickets closed, as in a real desk) that a sequential scan would lose, and
// checks each filter is served by its index.
func TestTicketListsUseTheirIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	_, err := db.Exec(ctx, `
INSERT INTO accounts (name) SELECT 'acct ' || g FROM generate_series(1, 20) g;
INSERT INTO customers (account_id, name) SELECT 1 + g % 20, 'c' || g FROM generate_series(1, 4000) g;
INSERT INTO agents (account_id, email, name, role)
SELECT a, 'a' || a || '.' || k || '@x.test', 'agent', 'agent' FROM generate_series(1, 20) a, generate_series(1, 20) k ORDER BY a, k;
INSERT INTO teams (account_id, name, private)
SELECT a, 't' || k, k % 3 = 0 FROM generate_series(1, 20) a, generate_series(1, 5) k ORDER BY a, k;
INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id, assignee_id, team_id, created_at)
SELECT c.account_id, 's', CASE g % 40 WHEN 0 THEN 'new' WHEN 1 THEN 'open' WHEN 2 THEN 'pending' WHEN 3 THEN 'solved' ELSE 'closed' END, 'normal', 'email', c.id,
       CASE WHEN g % 4 = 0 THEN NULL ELSE (SELECT min(id) FROM agents a WHERE a.account_id = c.account_id) + (g % 20) END,
       CASE WHEN g % 2 = 0 THEN NULL ELSE (SELECT min(id) FROM teams tm WHERE tm.account_id = c.account_id) + (g % 5) END,
       now() - g * interval '1 minute'
FROM generate_series(1, 60000) g JOIN customers c ON c.id = 1 + g % 4000;
ANALYZE;`)
	if err != nil {
		t.Fatal(err)
	}
	var agentID, teamID, customerID int64
	db.QueryRow(ctx, `SELECT assignee_id, team_id, customer_id FROM tickets WHERE account_id = 1 AND assignee_id IS NOT NULL AND team_id IS NOT NULL LIMIT 1`).Scan(&agentID, &teamID, &customerID)
	agent := agentdesk.Actor{AccountID: 1, AgentID: agentID, Role: agentdesk.RoleAgent, TeamIDs: []int64{teamID}}
	super := agentdesk.Actor{AccountID: 1, AgentID: agentID, Role: agentdesk.RoleSupervisor}
	open := []agentdesk.Status{agentdesk.StatusNew, agentdesk.StatusOpen, agentdesk.StatusPending}
	for _, c := range []struct {
		name  string
		actor agentdesk.Actor
		f     agentdesk.TicketFilter
		index string
	}{
		{"all, supervisor", super, agentdesk.TicketFilter{}, "tickets_list"},
		{"all, agent", agent, agentdesk.TicketFilter{}, "tickets_list"},
		{"mine", agent, agentdesk.TicketFilter{AssigneeID: &agentID}, "tickets_assignee"},
		{"mine and open", agent, agentdesk.TicketFilter{AssigneeID: &agentID, Status: open}, "tickets_assignee_open"},
		{"team", agent, agentdesk.TicketFilter{TeamID: &teamID}, "tickets_team"},
		{"customer", agent, agentdesk.TicketFilter{CustomerID: &customerID}, "tickets_customer"},
		{"unassigned open queue", agent, agentdesk.TicketFilter{Status: open, Unassigned: true}, "tickets_unassigned_open"},
		{"open, any assignee", super, agentdesk.TicketFilter{Status: open}, "tickets_open"},
		{"next page", super, agentdesk.TicketFilter{Page: agentdesk.Page{Cursor: agentdesk.EncodeCursor(agentdesk.Keyset{At: timeNowMinusHour(), ID: 1 << 40})}}, "tickets_list"},
	} {
		sql, args, err := postgres.TicketListQuery(c.actor, c.f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(ctx, "EXPLAIN "+sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, c.index) || strings.Contains(text, "Seq Scan on tickets") {
			t.Errorf("%s: want %s, plan:\n%s", c.name, c.index, text)
		}
	}
}

func timeNowMinusHour() time.Time { return time.Now().Add(-time.Hour) }
