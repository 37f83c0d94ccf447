package web

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web/hub"
)

// Agent returns an agent's current rights for the hub's re-check of an open
// connection: from its session when it has one (ended, expired or the agent
// deactivated → Unauthenticated), else from the agent itself.
func (a *HubActions) Agent(ctx context.Context, accountID, agentID int64, session string) (agentdesk.Actor, error) {
	s, err := a.server()
	if err != nil {
		return agentdesk.Actor{}, err
	}
	if session != "" {
		actor, err := s.store.SessionActor(ctx, session, time.Now())
		if err == nil && (actor.AccountID != accountID || actor.AgentID != agentID) {
			return agentdesk.Actor{}, agentdesk.Errorf(agentdesk.Unauthenticated, "session of someone else")
		}
		return actor, err
	}
	ag, err := s.store.Agent(ctx, accountID, agentID)
	if err != nil {
		return agentdesk.Actor{}, err
	}
	if !ag.Active {
		return agentdesk.Actor{}, agentdesk.Errorf(agentdesk.Unauthenticated, "agent deactivated")
	}
	return agentdesk.Actor{AccountID: accountID, AgentID: agentID, Role: ag.Role, TeamIDs: ag.TeamIDs}, nil
}

// accessChanged tells every server's websocket hub that the rights of
// these agents changed (teams, role, active flag, sessions): their open
// connections re-check what they follow. The store commits the change in
// its own transaction, so this is a second one right after it; should it
// fail, the caller answers with an error and the admin's retry publishes.
func (s *Server) accessChanged(ctx context.Context, accountID int64, agentIDs ...int64) error {
	if len(agentIDs) == 0 {
		return nil
	}
	err := postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		for _, id := range agentIDs {
			if err := hub.PublishAccessChanged(ctx, tx, accountID, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("announce access change: %w", err)
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
