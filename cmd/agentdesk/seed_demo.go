package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

// The demo operation of DOMAIN.md: one account, three teams and queues, 12
// agents and 2 supervisors with mixed skills, an admin, and ~2,000 customers
// with 6 months of history.
const (
	demoAccountName = "AgentDesk Demo"
	demoDomain      = "demo.agentdesk.local"
	demoCustomers   = 2000
	demoCompanies   = 40
	// about three tickets per customer over six months, four messages each
	demoMessages = 24000

	// The demo passwords are fixed and printed: this is a demo, not a
	// deployment. Every user of a role shares its role's password.
	demoAdminPassword      = "demo-admin"
	demoSupervisorPassword = "demo-supervisor"
	demoAgentPassword      = "demo-agent"
)

type demoUser struct {
	email  string // local part; the domain is demoDomain
	name   string
	role   agentdesk.Role
	teams  []string
	skills map[string]int
}

var demoTeams = []string{"Sales", "Support", "Billing"}

// demoUsers lists the admin, the 2 supervisors and the 12 agents. The first
// user of each role is the one printed by --print-logins.
var demoUsers = []demoUser{
	{"admin", "Ada Admin", agentdesk.RoleAdmin, nil, nil},
	{"supervisor", "Sam Supervisor", agentdesk.RoleSupervisor, []string{"Support"}, map[string]int{"english": 5, "german": 3, "support": 5}},
	{"priya.patel", "Priya Patel", agentdesk.RoleSupervisor, []string{"Sales", "Billing"}, map[string]int{"english": 5, "sales": 5, "billing": 4}},
	{"agent", "Alex Agent", agentdesk.RoleAgent, []string{"Support"}, map[string]int{"english": 5, "german": 4, "support": 4}},
	{"agent2", "Jamie Agent", agentdesk.RoleAgent, []string{"Support", "Sales"}, map[string]int{"english": 5, "support": 3, "sales": 3}},
	{"lena.mueller", "Lena Müller", agentdesk.RoleAgent, []string{"Support"}, map[string]int{"german": 5, "english": 4, "support": 4}},
	{"jonas.becker", "Jonas Becker", agentdesk.RoleAgent, []string{"Support"}, map[string]int{"german": 5, "english": 3, "support": 3}},
	{"maria.garcia", "Maria Garcia", agentdesk.RoleAgent, []string{"Support"}, map[string]int{"english": 5, "support": 5}},
	{"tom.walsh", "Tom Walsh", agentdesk.RoleAgent, []string{"Support"}, map[string]int{"english": 5, "support": 2}},
	{"chloe.martin", "Chloe Martin", agentdesk.RoleAgent, []string{"Sales"}, map[string]int{"english": 5, "sales": 5}},
	{"omar.haddad", "Omar Haddad", agentdesk.RoleAgent, []string{"Sales"}, map[string]int{"english": 4, "german": 3, "sales": 4}},
	{"grace.kim", "Grace Kim", agentdesk.RoleAgent, []string{"Sales", "Support"}, map[string]int{"english": 5, "sales": 3, "support": 3}},
	{"felix.wagner", "Felix Wagner", agentdesk.RoleAgent, []string{"Billing"}, map[string]int{"german": 5, "english": 4, "billing": 5}},
	{"nina.rossi", "Nina Rossi", agentdesk.RoleAgent, []string{"Billing"}, map[string]int{"english": 5, "billing": 4}},
	{"david.okafor", "David Okafor", agentdesk.RoleAgent, []string{"Billing", "Support"}, map[string]int{"english": 5, "billing": 3, "support": 3}},
}

// contactReasons is the demo taxonomy: category → reasons.
var contactReasons = []struct {
	category string
	reasons  []string
}{
	{"Billing", []string{"Invoice question", "Refund request", "Payment failed"}},
	{"Orders", []string{"Where is my order", "Wrong item", "Return"}},
	{"Account", []string{"Login problem", "Change details", "Close account"}},
	{"Product", []string{"How-to", "Defect", "Feature request"}},
	{"Sales", []string{"Pricing", "Upgrade", "Demo request"}},
}

var cancellationReasons = []string{
	"Too expensive", "Moved to competitor", "Product not needed anymore", "Poor service experience",
	"Missing feature", "Technical problems", "Moving or closing business", "Payment failure (involuntary)",
}

func demoPassword(r agentdesk.Role) string {
	switch r {
	case agentdesk.RoleAdmin:
		return demoAdminPassword
	case agentdesk.RoleSupervisor:
		return demoSupervisorPassword
	}
	return demoAgentPassword
}

// printDemoLogins prints the admin, a supervisor and two agents.
func printDemoLogins(w io.Writer) {
	fmt.Fprintln(w, "Demo logins (every user of a role has that role's password):")
	for _, u := range demoUsers {
		if u.email == "admin" || u.email == "supervisor" || u.email == "agent" || u.email == "agent2" {
			fmt.Fprintf(w, "  %-11s %-34s password: %s\n", u.role, u.email+"@"+demoDomain, demoPassword(u.role))
		}
	}
}

// seedQueues creates the demo queues through the routing engine and returns
// their ids by name. It is set by seed_queues.go.
var seedQueues func(ctx context.Context, db *pgxpool.Pool, accountID int64, teams map[string]int64) (map[string]int64, error)

// createDemoOrg creates the demo account with its teams, users, reasons and
// queues, and returns the account id.
func createDemoOrg(ctx context.Context, store *postgres.Store) (int64, error) {
	acct, err := store.CreateAccount(ctx, demoAccountName)
	if err != nil {
		return 0, err
	}
	teams := map[string]int64{}
	for _, name := range demoTeams {
		t := &agentdesk.Team{Name: name}
		if err := store.CreateTeam(ctx, acct.ID, t); err != nil {
			return 0, fmt.Errorf("team %s: %w", name, err)
		}
		teams[name] = t.ID
	}
	hashes := map[agentdesk.Role]string{}
	for _, u := range demoUsers {
		hash, ok := hashes[u.role]
		if !ok {
			// One hash per role: argon2id is slow on purpose, and users of a
			// role share the demo password anyway.
			if hash, err = web.HashPassword(demoPassword(u.role), web.DefaultPasswordParams); err != nil {
				return 0, err
			}
			hashes[u.role] = hash
		}
		a := &agentdesk.Agent{Email: u.email + "@" + demoDomain, Name: u.name, Role: u.role, Skills: u.skills}
		for _, t := range u.teams {
			a.TeamIDs = append(a.TeamIDs, teams[t])
		}
		if err := store.CreateAgent(ctx, acct.ID, a, hash); err != nil {
			return 0, fmt.Errorf("user %s: %w", a.Email, err)
		}
	}
	err = postgres.InTx(ctx, store.DB(), func(tx pgx.Tx) error {
		for _, c := range contactReasons {
			var parent int64
			if err := tx.QueryRow(ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, 'contact', $2) RETURNING id`,
				acct.ID, c.category).Scan(&parent); err != nil {
				return err
			}
			for _, r := range c.reasons {
				if _, err := tx.Exec(ctx, `INSERT INTO reasons (account_id, kind, parent_id, name) VALUES ($1, 'contact', $2, $3)`,
					acct.ID, parent, r); err != nil {
					return err
				}
			}
		}
		for _, r := range cancellationReasons {
			if _, err := tx.Exec(ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, 'cancellation', $2)`, acct.ID, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reasons: %w", err)
	}
	queues := map[string]int64{}
	if seedQueues != nil {
		if queues, err = seedQueues(ctx, store.DB(), acct.ID, teams); err != nil {
			return 0, fmt.Errorf("queues: %w", err)
		}
	}
	// Support addresses, so mail sent to the SMTP server (AGENTDESK_SMTP_ADDR)
	// lands in the demo's queues.
	for _, mb := range []struct{ local, name, queue string }{
		{"support", "AgentDesk Demo Support", "Support"}, {"billing", "AgentDesk Demo Billing", "Billing"}, {"sales", "AgentDesk Demo Sales", "Sales"},
	} {
		m := &email.Mailbox{Address: mb.local + "@" + demoDomain, DisplayName: mb.name, QueueID: queues[mb.queue], AutoAck: true}
		if id, ok := teams[mb.queue]; ok {
			m.TeamID = &id
		}
		if err := email.CreateMailbox(ctx, store.DB(), acct.ID, m); err != nil {
			return 0, fmt.Errorf("mailbox %s: %w", m.Address, err)
		}
	}
	if err := seedWidget(ctx, store, acct.ID, queues); err != nil {
		return 0, fmt.Errorf("chat widget: %w", err)
	}
	if err := createDemoCanned(ctx, store, acct.ID, teams); err != nil {
		return 0, fmt.Errorf("canned responses: %w", err)
	}
	return acct.ID, nil
}

// org is what the history generator needs to know about an account.
type org struct {
	accountID int64
	teams     map[string]int64
	agents    map[string][]orgAgent // team name → agents (role agent) in it
	allAgents []orgAgent
	contact   []orgReason // leaf contact reasons
	cancel    map[string]int64
	queues    map[string]orgQueue
}

type orgQueue struct {
	id       int64
	priority int
	skills   map[string]int
}

type orgAgent struct {
	id     int64
	name   string
	german bool
}

type orgReason struct {
	id       int64
	category string
	name     string
}

// loadOrg reads the account's agents, teams and reasons, so a data set can
// be added to any account that has them.
func loadOrg(ctx context.Context, db *pgxpool.Pool, accountID int64) (*org, error) {
	o := &org{accountID: accountID, teams: map[string]int64{}, agents: map[string][]orgAgent{}, cancel: map[string]int64{}}
	rows, err := db.Query(ctx, `SELECT id, name FROM teams WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("load teams: %w", err)
	}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return nil, err
		}
		o.teams[name] = id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.Query(ctx, `SELECT a.id, a.name, coalesce(t.name, ''),
			EXISTS (SELECT 1 FROM agent_skills s JOIN skills k ON k.id = s.skill_id WHERE s.agent_id = a.id AND k.name = 'german')
		FROM agents a LEFT JOIN team_members m ON m.agent_id = a.id LEFT JOIN teams t ON t.id = m.team_id
		WHERE a.account_id = $1 AND a.role = 'agent' AND a.active ORDER BY a.id, t.name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	seen := map[int64]bool{}
	for rows.Next() {
		var a orgAgent
		var team string
		if err := rows.Scan(&a.id, &a.name, &team, &a.german); err != nil {
			rows.Close()
			return nil, err
		}
		if team != "" {
			o.agents[team] = append(o.agents[team], a)
		}
		if !seen[a.id] {
			seen[a.id] = true
			o.allAgents = append(o.allAgents, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.Query(ctx, `SELECT r.id, r.kind, coalesce(p.name, ''), r.name FROM reasons r
		LEFT JOIN reasons p ON p.id = r.parent_id
		WHERE r.account_id = $1 AND r.archived_at IS NULL
		  AND (r.kind = 'cancellation' OR r.parent_id IS NOT NULL) ORDER BY r.id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("load reasons: %w", err)
	}
	for rows.Next() {
		var r orgReason
		var kind string
		if err := rows.Scan(&r.id, &kind, &r.category, &r.name); err != nil {
			rows.Close()
			return nil, err
		}
		if kind == "cancellation" {
			o.cancel[strings.ToLower(r.name)] = r.id
		} else {
			o.contact = append(o.contact, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	o.queues = map[string]orgQueue{}
	rows, err = db.Query(ctx, `SELECT id, name, priority, required_skills FROM queues WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("load queues: %w", err)
	}
	for rows.Next() {
		var q orgQueue
		var name string
		if err := rows.Scan(&q.id, &name, &q.priority, &q.skills); err != nil {
			rows.Close()
			return nil, err
		}
		o.queues[name] = q
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(o.allAgents) == 0 || len(o.contact) == 0 || len(o.cancel) == 0 {
		return nil, fmt.Errorf("account %d needs agents, contact reasons and cancellation reasons before history can be generated (seed --demo creates them)", accountID)
	}
	return o, nil
}
