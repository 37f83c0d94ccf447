package web

import (
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func init() { registerAPI(mountAgents) }

// Roles: every agent reads the directory (to assign and transfer work);
// only admins create users, change roles, teams, capacity and passwords,
// and each such change is audited (never with the password).
func mountAgents(s *Server, a *apiRouter) {
	a.route("GET", "/agents", agentdesk.RoleAgent, "The agent directory, by id (agent+)",
		s.listAgents, doc{Response: List[agentdesk.Agent]{}, Query: []string{"limit", "cursor"}})
	a.route("POST", "/agents", agentdesk.RoleAdmin, "Create a user (agent, supervisor or admin) with an initial password (admin)",
		s.createAgent, doc{Body: agentRequest{}, Response: agentdesk.Agent{}, Status: 201, Idempotent: true})
	a.route("GET", "/agents/{id}", agentdesk.RoleAgent, "One agent (agent+)",
		s.getAgent, doc{Response: agentdesk.Agent{}})
	a.route("PATCH", "/agents/{id}", agentdesk.RoleAdmin, "Change a user's name, email, role, capacity, skills, teams, active flag or password (admin)",
		s.patchAgent, doc{Body: agentPatch{}, Response: agentdesk.Agent{}})
}

type agentRequest struct {
	Email    string                    `json:"email"`
	Name     string                    `json:"name"`
	Role     agentdesk.Role            `json:"role"`
	Capacity map[agentdesk.Channel]int `json:"capacity"`
	Skills   map[string]int            `json:"skills"`
	TeamIDs  []int64                   `json:"team_ids"`
	Password string                    `json:"password"`
}

// agentPatch changes only the fields present.
type agentPatch struct {
	Email    *string                    `json:"email"`
	Name     *string                    `json:"name"`
	Role     *agentdesk.Role            `json:"role"`
	Capacity *map[agentdesk.Channel]int `json:"capacity"`
	Skills   *map[string]int            `json:"skills"`
	TeamIDs  *[]int64                   `json:"team_ids"`
	Active   *bool                      `json:"active"`
	Password *string                    `json:"password"`
}

// Password length bounds: long enough to resist guessing, short enough that
// hashing a hostile input stays cheap.
const (
	minPassword = 10
	maxPassword = 200
)

func checkPassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return agentdesk.FieldError("password", "must be %d-%d characters", minPassword, maxPassword)
	}
	return nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	items, next, err := s.store.Agents(r.Context(), actor.AccountID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request) error {
	var req agentRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	a := &agentdesk.Agent{Email: req.Email, Name: req.Name, Role: req.Role, Capacity: req.Capacity, Skills: req.Skills, TeamIDs: req.TeamIDs}
	if err := a.Validate(); err != nil {
		return err
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	hash, err := HashPassword(req.Password, DefaultPasswordParams)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.store.CreateAgent(r.Context(), actor.AccountID, a, hash); err != nil {
		return renameField(err, "team_id", "team_ids")
	}
	if err := postgres.Audit(r.Context(), s.store.DB(), actor, "agent.create", "agent:"+strconv.FormatInt(a.ID, 10), a); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) error {
	return getByID(w, r, s.store.Agent)
}

func (s *Server) patchAgent(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p agentPatch
	if err := decode(w, r, &p, 64<<10); err != nil {
		return err
	}
	ctx := r.Context()
	actor, _ := actorOf(ctx)
	a, err := s.store.Agent(ctx, actor.AccountID, id)
	if err != nil {
		return err
	}
	before := *a
	if p.Email != nil {
		a.Email = *p.Email
	}
	if p.Name != nil {
		a.Name = *p.Name
	}
	if p.Role != nil {
		a.Role = *p.Role
		if a.Role == "" {
			return agentdesk.FieldError("role", "must be one of agent, supervisor, admin")
		}
	}
	if p.Capacity != nil {
		a.Capacity = *p.Capacity
	}
	if p.Skills != nil {
		a.Skills = *p.Skills
	}
	if p.TeamIDs != nil {
		a.TeamIDs = *p.TeamIDs
	}
	if p.Active != nil {
		a.Active = *p.Active
	}
	// An admin taking away their own rights could leave the account with
	// nobody to manage it; another admin has to do it.
	if actor.AgentID == id && (!a.Active || a.Role != agentdesk.RoleAdmin) {
		return &agentdesk.Error{Kind: agentdesk.Conflict, Field: "role", Message: "you cannot demote or deactivate yourself; ask another admin"}
	}
	var hash string
	if p.Password != nil {
		if err := checkPassword(*p.Password); err != nil {
			return err
		}
		if hash, err = HashPassword(*p.Password, DefaultPasswordParams); err != nil {
			return err
		}
	}
	if err := a.Validate(); err != nil {
		return err
	}
	// The change, the end of the agent's sessions, the event that tells
	// their open websockets and the audit entry commit together: a crash
	// between them cannot leave a socket with rights the agent lost.
	err = postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		if err := postgres.UpdateAgentTx(ctx, tx, actor.AccountID, a); err != nil {
			return renameField(err, "team_id", "team_ids")
		}
		if hash != "" || !a.Active {
			if hash != "" {
				if err := postgres.SetPasswordTx(ctx, tx, actor.AccountID, id, hash); err != nil {
					return err
				}
			}
			// A new password or a deactivation signs the user out everywhere
			// (but for the admin's own current session).
			keep := ""
			if c, err := r.Cookie(SessionCookie); err == nil && actor.AgentID == id {
				keep = c.Value
			}
			if _, err := postgres.EndAgentSessionsTx(ctx, tx, actor.AccountID, id, keep); err != nil {
				return err
			}
		}
		// Open websockets of the agent re-check their streams (teams, role),
		// or close (deactivated, signed out by the new password).
		if hash != "" || a.Active != before.Active || a.Role != before.Role || len(changedMembers(before.TeamIDs, a.TeamIDs)) > 0 {
			if err := publishAccessChanged(ctx, tx, actor.AccountID, id); err != nil {
				return err
			}
		}
		details := map[string]any{"before": before, "after": a, "password_changed": hash != ""}
		return postgres.Audit(ctx, tx, actor, "agent.update", "agent:"+strconv.FormatInt(id, 10), details)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
