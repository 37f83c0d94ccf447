package web

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func init() { registerAPI(mountTeams) }

// Roles: agents read teams (to transfer tickets); admins create and change
// them, audited. A private team's tickets are visible only to its members
// and to supervisors and admins.
func mountTeams(s *Server, a *apiRouter) {
	a.route("GET", "/teams", agentdesk.RoleAgent, "All teams by name (agent+)",
		s.listTeams, doc{Response: List[agentdesk.Team]{}})
	a.route("POST", "/teams", agentdesk.RoleAdmin, "Create a team with its members; private teams' tickets are visible only to members, supervisors and admins (admin)",
		s.createTeam, doc{Body: teamRequest{}, Response: agentdesk.Team{}, Status: 201, Idempotent: true})
	a.route("GET", "/teams/{id}", agentdesk.RoleAgent, "One team with its members (agent+)",
		s.getTeam, doc{Response: agentdesk.Team{}})
	a.route("PATCH", "/teams/{id}", agentdesk.RoleAdmin, "Rename a team, make it private or public, replace its members (admin)",
		s.patchTeam, doc{Body: teamPatch{}, Response: agentdesk.Team{}})
}

type teamRequest struct {
	Name      string  `json:"name"`
	Private   bool    `json:"private"`
	MemberIDs []int64 `json:"member_ids"`
}

// teamPatch changes only the fields present; member_ids replaces the members.
type teamPatch struct {
	Name      *string  `json:"name"`
	Private   *bool    `json:"private"`
	MemberIDs *[]int64 `json:"member_ids"`
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	items, err := s.store.Teams(r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, ""))
	return nil
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request) error {
	var req teamRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	t := &agentdesk.Team{Name: req.Name, Private: req.Private, MemberIDs: req.MemberIDs}
	ctx := r.Context()
	err := postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		if err := postgres.CreateTeamTx(ctx, tx, actor.AccountID, t); err != nil {
			return renameField(err, "agent_id", "member_ids")
		}
		if t.MemberIDs == nil {
			t.MemberIDs = []int64{}
		}
		if err := postgres.Audit(ctx, tx, actor, "team.create", "team:"+strconv.FormatInt(t.ID, 10), t); err != nil {
			return err
		}
		// The members' open websockets may follow the team from now.
		return publishAccessChanged(ctx, tx, actor.AccountID, t.MemberIDs...)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request) error {
	return getByID(w, r, s.store.Team)
}

func (s *Server) patchTeam(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p teamPatch
	if err := decode(w, r, &p, 64<<10); err != nil {
		return err
	}
	ctx := r.Context()
	actor, _ := actorOf(ctx)
	t, err := s.store.Team(ctx, actor.AccountID, id)
	if err != nil {
		return err
	}
	before := *t
	if p.Name != nil {
		t.Name = *p.Name
	}
	if p.Private != nil {
		t.Private = *p.Private
	}
	if p.MemberIDs != nil {
		t.MemberIDs = *p.MemberIDs
	}
	err = postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		if err := postgres.UpdateTeamTx(ctx, tx, actor.AccountID, t); err != nil {
			return renameField(err, "agent_id", "member_ids")
		}
		if t.MemberIDs == nil {
			t.MemberIDs = []int64{}
		}
		if err := postgres.Audit(ctx, tx, actor, "team.update", "team:"+strconv.FormatInt(id, 10), map[string]any{"before": before, "after": t}); err != nil {
			return err
		}
		// Members who joined or left see the team's streams from now, or no
		// more; in the change's transaction, so no crash can lose it.
		changed := changedMembers(before.MemberIDs, t.MemberIDs)
		if t.Private && !before.Private {
			// The team's tickets leave the sight of every agent outside it:
			// their desks drop the tickets' streams. Rare (an admin's
			// decision), so every such agent is told rather than every
			// ticket of the team.
			outside, err := postgres.AgentsOutsideTeamTx(ctx, tx, actor.AccountID, id)
			if err != nil {
				return err
			}
			for _, a := range outside {
				if !slices.Contains(changed, a) {
					changed = append(changed, a)
				}
			}
		}
		return publishAccessChanged(ctx, tx, actor.AccountID, changed...)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
