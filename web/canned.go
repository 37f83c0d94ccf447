package web

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountCanned) }

// Roles: every agent reads canned responses and keeps personal ones;
// shared ones (the account's, a team's) are made and changed by supervisors
// and admins, audited. What a caller may see is applied by the store; one
// they may not see is 404, one they see but may not change 403.
func mountCanned(s *Server, a *apiRouter) {
	a.route("GET", "/canned-responses", agentdesk.RoleAgent, "The canned responses you may use, by title: the account's, your teams' (every team's for supervisors and admins) and your own; q matches title, shortcut or body (agent+)",
		s.listCanned, doc{Response: List[cannedView]{}, Query: []string{"q", "limit", "cursor"}})
	a.route("POST", "/canned-responses", agentdesk.RoleAgent, "Add a canned response: scope personal (agent+), team with team_id, or account (supervisor+); the body may use {{customer.name}}, {{customer.first_name}}, {{customer.email}}, {{agent.name}}, {{ticket.id}}, {{ticket.subject}}",
		s.createCanned, doc{Body: cannedRequest{}, Response: cannedView{}, Status: 201, Idempotent: true})
	a.route("GET", "/canned-responses/{id}", agentdesk.RoleAgent, "One canned response you may use (agent+)",
		s.getCanned, doc{Response: cannedView{}})
	a.route("PATCH", "/canned-responses/{id}", agentdesk.RoleAgent, "Change a canned response's title, body or shortcut: your own personal ones (agent+), shared ones (supervisor+)",
		s.patchCanned, doc{Body: cannedPatch{}, Response: cannedView{}})
	a.route("DELETE", "/canned-responses/{id}", agentdesk.RoleAgent, "Delete a canned response: your own personal ones (agent+), shared ones (supervisor+)",
		s.deleteCanned, doc{Status: 204})
	a.route("POST", "/canned-responses/{id}/render", agentdesk.RoleAgent, "The canned response's body with its placeholders filled in for a ticket you may see (agent+)",
		s.renderCanned, doc{Body: renderRequest{}, Response: renderedCanned{}})
}

// cannedLimit bounds a canned response request: a 10,000-character body
// with room for JSON escapes.
const cannedLimit = 64 << 10

// cannedRequest creates a canned response. scope defaults to personal.
type cannedRequest struct {
	Title    string                `json:"title"`
	Body     string                `json:"body"`
	Shortcut string                `json:"shortcut"`
	Scope    agentdesk.CannedScope `json:"scope,omitempty"`
	TeamID   *int64                `json:"team_id"`
}

// cannedPatch changes only the fields present; the scope is fixed.
type cannedPatch struct {
	Title    *string `json:"title"`
	Body     *string `json:"body"`
	Shortcut *string `json:"shortcut"`
}

type renderRequest struct {
	TicketID int64 `json:"ticket_id"`
}

type renderedCanned struct {
	Body string `json:"body"`
}

// cannedView is a canned response with its scope spelled out, so a client
// needs no rule to tell shared from personal.
type cannedView struct {
	agentdesk.CannedResponse
	Scope agentdesk.CannedScope `json:"scope"`
}

func viewCanned(c *agentdesk.CannedResponse) cannedView {
	return cannedView{CannedResponse: *c, Scope: c.Scope()}
}

func (s *Server) listCanned(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query().Get("q")
	if utf8.RuneCountInString(q) > 200 {
		return agentdesk.FieldError("q", "must be at most 200 characters")
	}
	actor, _ := actorOf(r.Context())
	items, next, err := s.store.CannedResponses(r.Context(), actor, agentdesk.CannedFilter{Query: q, Page: p})
	if err != nil {
		return err
	}
	views := make([]cannedView, len(items))
	for i := range items {
		views[i] = viewCanned(&items[i])
	}
	writeJSON(w, http.StatusOK, listOf(views, next))
	return nil
}

func (s *Server) getCanned(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c, err := s.store.CannedResponse(r.Context(), actor, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewCanned(c))
	return nil
}

func (s *Server) createCanned(w http.ResponseWriter, r *http.Request) error {
	var req cannedRequest
	if err := decode(w, r, &req, cannedLimit); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c := &agentdesk.CannedResponse{Title: req.Title, Body: req.Body, Shortcut: req.Shortcut}
	switch req.Scope {
	case "", agentdesk.CannedPersonal:
		if req.TeamID != nil {
			return agentdesk.FieldError("team_id", "a personal canned response belongs to no team; use scope \"team\"")
		}
		if !actor.IsAgent() {
			return agentdesk.FieldError("scope", "personal canned responses belong to a signed-in user, not an API token")
		}
		c.AgentID = &actor.AgentID
	case agentdesk.CannedTeam, agentdesk.CannedAccount:
		if !actor.Role.AtLeast(agentdesk.RoleSupervisor) {
			return &agentdesk.Error{Kind: agentdesk.Forbidden, Field: "scope", Message: "shared canned responses are made by supervisors and admins"}
		}
		if req.Scope == agentdesk.CannedTeam && req.TeamID == nil {
			return agentdesk.FieldError("team_id", "a team canned response needs team_id")
		}
		if req.Scope == agentdesk.CannedAccount && req.TeamID != nil {
			return agentdesk.FieldError("team_id", "an account-wide canned response belongs to no team; use scope \"team\"")
		}
		c.TeamID = req.TeamID
	default:
		return agentdesk.FieldError("scope", "must be personal, team or account")
	}
	if err := s.store.CreateCannedResponse(r.Context(), actor, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewCanned(c))
	return nil
}

func (s *Server) patchCanned(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p cannedPatch
	if err := decode(w, r, &p, cannedLimit); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c, err := s.store.UpdateCannedResponse(r.Context(), actor, id, func(c *agentdesk.CannedResponse) error {
		if p.Title != nil {
			c.Title = *p.Title
		}
		if p.Body != nil {
			c.Body = *p.Body
		}
		if p.Shortcut != nil {
			c.Shortcut = *p.Shortcut
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewCanned(c))
	return nil
}

func (s *Server) deleteCanned(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.store.DeleteCannedResponse(r.Context(), actor, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// renderCanned fills the placeholders for one ticket. Both the response and
// the ticket are read as the caller may see them: either one out of sight is
// 404.
func (s *Server) renderCanned(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req renderRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	if req.TicketID <= 0 {
		return agentdesk.FieldError("ticket_id", "must be the id of a ticket")
	}
	ctx := r.Context()
	actor, _ := actorOf(ctx)
	c, err := s.store.CannedResponse(ctx, actor, id)
	if err != nil {
		return err
	}
	t, err := s.store.Ticket(ctx, actor, req.TicketID)
	if err != nil {
		return err
	}
	cust, err := s.store.Customer(ctx, actor.AccountID, t.CustomerID)
	if err != nil {
		return err
	}
	values := map[string]string{
		"customer.name":       cust.Name,
		"customer.first_name": agentdesk.FirstName(cust.Name),
		"ticket.id":           strconv.FormatInt(t.ID, 10),
		"ticket.subject":      t.Subject,
	}
	for _, i := range cust.Identities {
		if i.Kind == agentdesk.IdentityEmail {
			values["customer.email"] = i.Value
			break
		}
	}
	if actor.IsAgent() {
		a, err := s.store.Agent(ctx, actor.AccountID, actor.AgentID)
		if err != nil {
			return err
		}
		values["agent.name"] = a.Name
	}
	writeJSON(w, http.StatusOK, renderedCanned{Body: agentdesk.RenderCanned(c.Body, values)})
	return nil
}
