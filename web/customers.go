package web

import (
	"bytes"
	"net/http"
	"strconv"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountCustomers) }

// Roles: agents work with customers every day, so they list, read, create
// and edit them and add addresses. Removing an address and merging change
// who future contacts reach and are audited, so they need a supervisor.
func mountCustomers(s *Server, a *apiRouter) {
	a.route("GET", "/customers", agentdesk.RoleAgent, "List customers, newest first (agent+); q matches a name prefix or an exact email/phone/visitor/shop id",
		s.listCustomers, doc{Response: List[agentdesk.Customer]{}, Query: []string{"q", "company_id", "lifecycle_stage", "limit", "cursor"}})
	a.route("POST", "/customers", agentdesk.RoleAgent, "Create a customer with identities (agent+); phone values are parsed to E.164",
		s.createCustomer, doc{Body: customerRequest{}, Response: agentdesk.Customer{}, Status: 201, Idempotent: true})
	a.route("GET", "/customers/{id}", agentdesk.RoleAgent, "One customer with identities (agent+); a merged one carries merged_into",
		s.getCustomer, doc{Response: agentdesk.Customer{}})
	a.route("PATCH", "/customers/{id}", agentdesk.RoleAgent, "Change a customer's name, company, stage, preferred channel or attributes (agent+)",
		s.patchCustomer, doc{Body: customerPatchDoc{}, Response: agentdesk.Customer{}})
	a.route("POST", "/customers/{id}/identities", agentdesk.RoleAgent, "Add an identity (agent+); a taken address is 409",
		s.addIdentity, doc{Body: identityRequest{}, Response: agentdesk.Identity{}, Status: 201, Idempotent: true})
	a.route("DELETE", "/customers/{id}/identities/{identityID}", agentdesk.RoleSupervisor, "Remove an identity (supervisor+); history stays with the customer",
		s.removeIdentity, doc{Status: 204})
	a.route("POST", "/customers/{id}/merge", agentdesk.RoleSupervisor, "Merge customer merge_id into this one (supervisor+); audited and undoable",
		s.mergeCustomer, doc{Body: mergeRequest{}, Response: agentdesk.Merge{}, Status: 201, Idempotent: true})
	a.route("GET", "/customers/{id}/merges", agentdesk.RoleAgent, "Merges this customer took part in, newest first (agent+)",
		s.listMerges, doc{Response: List[agentdesk.Merge]{}})
	a.route("POST", "/merges/{id}/undo", agentdesk.RoleSupervisor, "Undo a merge (supervisor+): both customers as they were; audited",
		s.undoMerge, doc{Response: agentdesk.Merge{}})
}

// identityRequest is one address in a request.
type identityRequest struct {
	Kind    agentdesk.IdentityKind `json:"kind"`
	Network string                 `json:"network,omitempty"`
	Value   string                 `json:"value"`
}

type customerRequest struct {
	Name             string            `json:"name"`
	CompanyID        *int64            `json:"company_id"`
	Stage            string            `json:"lifecycle_stage"`
	PreferredChannel string            `json:"preferred_channel"`
	Attributes       map[string]string `json:"attributes"`
	Identities       []identityRequest `json:"identities"`
}

// customerPatch changes only the fields present; "company_id": null clears
// the company.
type customerPatch struct {
	Name             *string            `json:"name"`
	CompanyID        optionalID         `json:"company_id"`
	Stage            *string            `json:"lifecycle_stage"`
	PreferredChannel *string            `json:"preferred_channel"`
	Attributes       *map[string]string `json:"attributes"`
}

// customerPatchDoc is customerPatch as the OpenAPI document shows it.
type customerPatchDoc struct {
	Name             *string            `json:"name"`
	CompanyID        *int64             `json:"company_id"`
	Stage            *string            `json:"lifecycle_stage"`
	PreferredChannel *string            `json:"preferred_channel"`
	Attributes       *map[string]string `json:"attributes"`
}

// optionalID tells an absent field from an explicit null.
type optionalID struct {
	Set   bool
	Value *int64
}

func (o *optionalID) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Value = nil
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n <= 0 {
		return agentdesk.FieldError("company_id", "must be a positive integer or null")
	}
	o.Value = &n
	return nil
}

type mergeRequest struct {
	MergeID int64 `json:"merge_id"`
}

func (s *Server) identitiesFrom(reqs []identityRequest) ([]agentdesk.Identity, error) {
	out := make([]agentdesk.Identity, len(reqs))
	for i, r := range reqs {
		out[i] = agentdesk.Identity{Kind: r.Kind, Network: r.Network, Value: r.Value}
		if err := s.normalizeIdentity(&out[i], "identities.value"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	company, err := queryID(r, "company_id")
	if err != nil {
		return err
	}
	f := agentdesk.CustomerFilter{Query: r.URL.Query().Get("q"), CompanyID: company, Stage: agentdesk.LifecycleStage(r.URL.Query().Get("lifecycle_stage")), Page: p}
	if len(f.Query) > 320 {
		return agentdesk.FieldError("q", "must be at most 320 characters")
	}
	// A query that reads as a phone number is looked up in E.164, the form
	// identities are stored in.
	if e164, err := s.normalizePhone(f.Query, "q"); err == nil && f.Query != "" {
		f.Query = e164
	}
	actor, _ := actorOf(r.Context())
	items, next, err := s.store.Customers(r.Context(), actor.AccountID, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) error {
	var req customerRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	ids, err := s.identitiesFrom(req.Identities)
	if err != nil {
		return err
	}
	c := &agentdesk.Customer{Name: req.Name, CompanyID: req.CompanyID, Stage: agentdesk.LifecycleStage(req.Stage),
		PreferredChannel: agentdesk.Channel(req.PreferredChannel), Attributes: req.Attributes, Identities: ids}
	if len(c.Identities) > 50 {
		return agentdesk.FieldError("identities", "at most 50 identities")
	}
	actor, _ := actorOf(r.Context())
	if err := s.store.CreateCustomer(r.Context(), actor.AccountID, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) error {
	return getByID(w, r, s.store.Customer)
}

func (s *Server) patchCustomer(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req customerPatch
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c, err := s.store.Customer(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	if req.Name != nil {
		c.Name = *req.Name
	}
	if req.CompanyID.Set {
		c.CompanyID = req.CompanyID.Value
	}
	if req.Stage != nil {
		c.Stage = agentdesk.LifecycleStage(*req.Stage)
		if c.Stage == "" {
			return agentdesk.FieldError("lifecycle_stage", "must be one of lead, prospect, customer, churned")
		}
	}
	if req.PreferredChannel != nil {
		c.PreferredChannel = agentdesk.Channel(*req.PreferredChannel)
	}
	if req.Attributes != nil {
		c.Attributes = *req.Attributes
	}
	if err := s.store.UpdateCustomer(r.Context(), actor.AccountID, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) addIdentity(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req identityRequest
	if err := decode(w, r, &req, 8<<10); err != nil {
		return err
	}
	ident := agentdesk.Identity{Kind: req.Kind, Network: req.Network, Value: req.Value}
	if err := s.normalizeIdentity(&ident, "value"); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.store.AddIdentity(r.Context(), actor.AccountID, id, &ident); err != nil {
		// The body is one identity: name its fields as sent.
		for _, f := range []string{"value", "kind", "network"} {
			err = renameField(err, "identities."+f, f)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, ident)
	return nil
}

func (s *Server) removeIdentity(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	identityID, err := pathID(r, "identityID")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.store.RemoveIdentity(r.Context(), actor.AccountID, id, identityID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) mergeCustomer(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req mergeRequest
	if err := decode(w, r, &req, 1<<10); err != nil {
		return err
	}
	if req.MergeID <= 0 {
		return agentdesk.FieldError("merge_id", "is required: the id of the customer to fold into this one")
	}
	actor, _ := actorOf(r.Context())
	m, err := s.store.Merge(r.Context(), actor.AccountID, id, req.MergeID, actor)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) listMerges(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if _, err := s.store.Customer(r.Context(), actor.AccountID, id); err != nil {
		return err
	}
	items, err := s.store.Merges(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, ""))
	return nil
}

func (s *Server) undoMerge(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	m, err := s.store.Unmerge(r.Context(), actor.AccountID, id, actor)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}
