package web

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

// Agent returns an agent's current rights for the hub's re-check of an open
// connection: from its session when it has one (ended, expired or the agent
// deactivated → Unauthenticated), with the session's expiry, else from the
// agent itself.
func (a *HubActions) Agent(ctx context.Context, accountID, agentID int64, session string) (agentdesk.Actor, time.Time, error) {
	s, err := a.server()
	if err != nil {
		return agentdesk.Actor{}, time.Time{}, err
	}
	if session != "" {
		actor, expires, err := s.store.Session(ctx, session, time.Now())
		if err == nil && (actor.AccountID != accountID || actor.AgentID != agentID) {
			return agentdesk.Actor{}, time.Time{}, agentdesk.Errorf(agentdesk.Unauthenticated, "session of someone else")
		}
		return actor, expires, err
	}
	ag, err := s.store.Agent(ctx, accountID, agentID)
	if err != nil {
		return agentdesk.Actor{}, time.Time{}, err
	}
	if !ag.Active {
		return agentdesk.Actor{}, time.Time{}, agentdesk.Errorf(agentdesk.Unauthenticated, "agent deactivated")
	}
	return agentdesk.Actor{AccountID: accountID, AgentID: agentID, Role: ag.Role, TeamIDs: ag.TeamIDs}, time.Time{}, nil
}

// Token returns an API token's rights for the hub's re-check of a
// connection it opened; Unauthenticated once revoked.
func (a *HubActions) Token(ctx context.Context, accountID, tokenID int64) (agentdesk.Actor, error) {
	s, err := a.server()
	if err != nil {
		return agentdesk.Actor{}, err
	}
	return s.store.TokenActorByID(ctx, accountID, tokenID)
}

// publishAccessChanged tells every server's websocket hub, once tx
// commits, that the rights of these agents changed (teams, role, active
// flag, sessions): their open connections re-check what they follow. It is
// published in the transaction of the change itself, so the change and the
// news of it commit together or not at all.
func publishAccessChanged(ctx context.Context, tx pgx.Tx, accountID int64, agentIDs ...int64) error {
	for _, id := range agentIDs {
		if err := hub.PublishAccessChanged(ctx, tx, accountID, id); err != nil {
			return fmt.Errorf("announce access change: %w", err)
		}
	}
	return nil
}

// changedMembers is who is in exactly one of before and after.
func changedMembers(before, after []int64) []int64 {
	var out []int64
	for _, id := range before {
		if !slices.Contains(after, id) {
			out = append(out, id)
		}
	}
	for _, id := range after {
		if !slices.Contains(before, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
