package web

import (
	"net/http"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountCompanies) }

// Companies are CRM records agents keep up to date alongside customers, so
// every role may create and edit them.
func mountCompanies(s *Server, a *apiRouter) {
	a.route("GET", "/companies", agentdesk.RoleAgent, "List companies, newest first (agent+)",
		s.listCompanies, doc{Response: List[agentdesk.Company]{}, Query: []string{"limit", "cursor"}})
	a.route("POST", "/companies", agentdesk.RoleAgent, "Create a company (agent+); a domain is unique per account",
		s.createCompany, doc{Body: companyRequest{}, Response: agentdesk.Company{}, Status: 201, Idempotent: true})
	a.route("GET", "/companies/{id}", agentdesk.RoleAgent, "One company (agent+)",
		s.getCompany, doc{Response: agentdesk.Company{}})
	a.route("PATCH", "/companies/{id}", agentdesk.RoleAgent, "Change a company's name, domain or attributes (agent+)",
		s.patchCompany, doc{Body: companyPatch{}, Response: agentdesk.Company{}})
	a.route("GET", "/companies/{id}/customers", agentdesk.RoleAgent, "The company's customers, newest first (agent+)",
		s.companyCustomers, doc{Response: List[agentdesk.Customer]{}, Query: []string{"limit", "cursor"}})
}

type companyRequest struct {
	Name       string            `json:"name"`
	Domain     string            `json:"domain"`
	Attributes map[string]string `json:"attributes"`
}

type companyPatch struct {
	Name       *string            `json:"name"`
	Domain     *string            `json:"domain"`
	Attributes *map[string]string `json:"attributes"`
}

func (s *Server) listCompanies(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	items, next, err := s.store.Companies(r.Context(), actor.AccountID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

func (s *Server) createCompany(w http.ResponseWriter, r *http.Request) error {
	var req companyRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	if err := checkAttributes(req.Attributes); err != nil {
		return err
	}
	c := &agentdesk.Company{Name: req.Name, Domain: req.Domain, Attributes: req.Attributes}
	actor, _ := actorOf(r.Context())
	if err := s.store.CreateCompany(r.Context(), actor.AccountID, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// checkAttributes applies the customer attribute limits to companies too.
func checkAttributes(m map[string]string) error {
	c := agentdesk.Customer{Attributes: m}
	return c.Validate()
}

func (s *Server) getCompany(w http.ResponseWriter, r *http.Request) error {
	return getByID(w, r, s.store.Company)
}

func (s *Server) patchCompany(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req companyPatch
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	c, err := s.store.Company(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	if req.Name != nil {
		c.Name = *req.Name
	}
	if req.Domain != nil {
		c.Domain = *req.Domain
	}
	if req.Attributes != nil {
		if err := checkAttributes(*req.Attributes); err != nil {
			return err
		}
		c.Attributes = *req.Attributes
	}
	if err := s.store.UpdateCompany(r.Context(), actor.AccountID, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) companyCustomers(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if _, err := s.store.Company(r.Context(), actor.AccountID, id); err != nil {
		return err
	}
	items, next, err := s.store.Customers(r.Context(), actor.AccountID, agentdesk.CustomerFilter{CompanyID: &id, Page: p})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}
