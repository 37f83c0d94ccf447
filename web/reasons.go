package web

import (
	"net/http"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountReasons) }

// Roles: agents read the reason lists (they pick from them at wrap-up);
// admins curate them, and every change is audited.
func mountReasons(s *Server, a *apiRouter) {
	a.route("GET", "/reasons", agentdesk.RoleAgent, "Contact and cancellation reasons, each category followed by its reasons (agent+); kind filters, archived=true includes archived ones",
		s.listReasons, doc{Response: List[agentdesk.Reason]{}, Query: []string{"kind", "archived"}})
	a.route("POST", "/reasons", agentdesk.RoleAdmin, "Add a category (no parent_id) or a reason under a category (admin)",
		s.createReason, doc{Body: reasonRequest{}, Response: agentdesk.Reason{}, Status: 201, Idempotent: true})
	a.route("PATCH", "/reasons/{id}", agentdesk.RoleAdmin, "Rename, move to another category, archive or restore a reason (admin)",
		s.patchReason, doc{Body: reasonPatch{}, Response: agentdesk.Reason{}})
	a.route("DELETE", "/reasons/{id}", agentdesk.RoleAdmin, "Delete an unused reason; a used one is archived instead so reports stay true (admin)",
		s.deleteReason, doc{Response: reasonDeleted{}})
}

type reasonRequest struct {
	Kind     agentdesk.ReasonKind `json:"kind"`
	ParentID *int64               `json:"parent_id"`
	Name     string               `json:"name"`
}

// reasonPatch changes only the fields present; "parent_id": null makes a
// reason a category of its own.
type reasonPatch struct {
	Name     *string    `json:"name"`
	ParentID nullableID `json:"parent_id"`
	Archived *bool      `json:"archived"`
}

// reasonDeleted says whether the reason is gone or was archived because
// tickets use it.
type reasonDeleted struct {
	ID       int64 `json:"id"`
	Archived bool  `json:"archived"`
}

func (s *Server) listReasons(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	kind := agentdesk.ReasonKind(r.URL.Query().Get("kind"))
	if kind != "" && kind != agentdesk.ContactReason && kind != agentdesk.CancellationReason {
		return agentdesk.FieldError("kind", "must be contact or cancellation")
	}
	archived := false
	switch r.URL.Query().Get("archived") {
	case "", "false", "0":
	case "true", "1":
		archived = true
	default:
		return agentdesk.FieldError("archived", "must be true or false")
	}
	items, err := s.store.Reasons(r.Context(), actor.AccountID, kind, archived)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, ""))
	return nil
}

func (s *Server) createReason(w http.ResponseWriter, r *http.Request) error {
	var req reasonRequest
	if err := decode(w, r, &req, 16<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	reason := &agentdesk.Reason{Kind: req.Kind, ParentID: req.ParentID, Name: req.Name}
	if err := s.store.CreateReason(r.Context(), actor, reason); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, reason)
	return nil
}

func (s *Server) patchReason(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p reasonPatch
	if err := decode(w, r, &p, 16<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	reason, err := s.store.Reason(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	if p.Name != nil {
		reason.Name = *p.Name
	}
	if p.ParentID.Set {
		reason.ParentID = p.ParentID.Value
	}
	if p.Archived != nil {
		switch {
		case !*p.Archived:
			reason.ArchivedAt = nil
		case reason.ArchivedAt == nil:
			reason.ArchivedAt = &reason.CreatedAt // any non-nil time: the store stamps now()
		}
	}
	if err := s.store.UpdateReason(r.Context(), actor, reason); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reason)
	return nil
}

func (s *Server) deleteReason(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	archived, err := s.store.DeleteReason(r.Context(), actor, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reasonDeleted{ID: id, Archived: archived})
	return nil
}
