package web

import (
	"net/http"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountStatuses) }

// Roles: agents read the statuses they can set; admins define custom ones,
// audited.
func mountStatuses(s *Server, a *apiRouter) {
	a.route("GET", "/statuses", agentdesk.RoleAgent, "The base statuses and the account's custom statuses with the base status each maps to (agent+)",
		s.listStatuses, doc{Response: statusList{}})
	a.route("POST", "/statuses", agentdesk.RoleAdmin, "Add a custom status mapped onto a base status (admin)",
		s.createStatus, doc{Body: statusRequest{}, Response: agentdesk.CustomStatus{}, Status: 201, Idempotent: true})
	a.route("PATCH", "/statuses/{id}", agentdesk.RoleAdmin, "Rename a custom status (tickets follow) or remap one no ticket has (admin)",
		s.patchStatus, doc{Body: statusPatch{}, Response: agentdesk.CustomStatus{}})
	a.route("DELETE", "/statuses/{id}", agentdesk.RoleAdmin, "Delete a custom status no ticket has (admin)",
		s.deleteStatus, doc{Status: 204})
}

// statusList is what a status picker needs.
type statusList struct {
	Base  []agentdesk.Status       `json:"base"`
	Items []agentdesk.CustomStatus `json:"items"`
}

type statusRequest struct {
	Name   string           `json:"name"`
	MapsTo agentdesk.Status `json:"maps_to"`
}

type statusPatch struct {
	Name   *string           `json:"name"`
	MapsTo *agentdesk.Status `json:"maps_to"`
}

func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	items, err := s.store.CustomStatuses(r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	if items == nil {
		items = []agentdesk.CustomStatus{}
	}
	base := []agentdesk.Status{agentdesk.StatusNew, agentdesk.StatusOpen, agentdesk.StatusPending, agentdesk.StatusOnHold, agentdesk.StatusSolved, agentdesk.StatusClosed}
	writeJSON(w, http.StatusOK, statusList{Base: base, Items: items})
	return nil
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) error {
	var req statusRequest
	if err := decode(w, r, &req, 16<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c := &agentdesk.CustomStatus{Name: req.Name, MapsTo: req.MapsTo}
	if err := s.store.CreateCustomStatus(r.Context(), actor, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) patchStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p statusPatch
	if err := decode(w, r, &p, 16<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c, err := s.store.CustomStatus(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	if p.Name != nil {
		c.Name = *p.Name
	}
	if p.MapsTo != nil {
		c.MapsTo = *p.MapsTo
	}
	if err := s.store.UpdateCustomStatus(r.Context(), actor, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.store.DeleteCustomStatus(r.Context(), actor, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
