package main

import (
	"context"
	"fmt"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// demoCanned are the demo's shared canned responses; team names the team
// that shares one ("" for the whole account).
var demoCanned = []struct {
	team, title, shortcut, body string
}{
	{"", "Greeting", "hi", "Hi {{customer.first_name}},\n\nthank you for getting in touch."},
	{"", "Closing", "bye", "Is there anything else I can help you with?\n\nBest regards,\n{{agent.name}}"},
	{"", "Order status", "where", "Hi {{customer.first_name}},\n\nI have checked your order: it left our warehouse and should reach you within two working days. Please quote ticket #{{ticket.id}} if you need us again."},
	{"Billing", "Refund issued", "refund", "Hi {{customer.first_name}},\n\nwe have issued your refund. It reaches your account within 5-7 working days.\n\nBest regards,\n{{agent.name}}"},
	{"Support", "Password reset", "reset", "Hi {{customer.first_name}},\n\nplease use \"Forgot password\" on the sign-in page; the link goes to {{customer.email}} and works for one hour."},
	{"Sales", "Pricing", "pricing", "Hi {{customer.first_name}},\n\nour plans start at 19 EUR per month; I am happy to put together an offer for your team."},
}

// createDemoCanned gives the demo account its shared canned responses and
// Alex Agent a personal one, through the store (shared ones are audited).
func createDemoCanned(ctx context.Context, store *postgres.Store, accountID int64, teams map[string]int64) error {
	admin := agentdesk.Actor{AccountID: accountID, Role: agentdesk.RoleAdmin}
	for _, d := range demoCanned {
		c := &agentdesk.CannedResponse{Title: d.title, Shortcut: d.shortcut, Body: d.body}
		if d.team != "" {
			id := teams[d.team]
			c.TeamID = &id
		}
		if err := store.CreateCannedResponse(ctx, admin, c); err != nil {
			return fmt.Errorf("%s: %w", d.title, err)
		}
	}
	var alex int64
	if err := store.DB().QueryRow(ctx, `SELECT id FROM agents WHERE account_id = $1 AND email = $2`, accountID, "agent@"+demoDomain).Scan(&alex); err != nil {
		return fmt.Errorf("demo agent: %w", err)
	}
	me := agentdesk.Actor{AccountID: accountID, AgentID: alex, Role: agentdesk.RoleAgent}
	return store.CreateCannedResponse(ctx, me, &agentdesk.CannedResponse{Title: "My sign-off", Shortcut: "sig", AgentID: &alex,
		Body: "Kind regards,\n{{agent.name}}\nAgentDesk Demo Support"})
}
