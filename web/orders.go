package web

import (
	"net/http"
	"time"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountOrders) }

// Orders normally come from the shop's signed webhook (POST
// /inbound/order). Agents read them beside the customer; a supervisor may
// record or correct one by hand.
func mountOrders(s *Server, a *apiRouter) {
	a.route("GET", "/customers/{id}/orders", agentdesk.RoleAgent, "The customer's orders, most recently placed first (agent+)",
		s.customerOrders, doc{Response: List[agentdesk.Order]{}, Query: []string{"limit", "cursor"}})
	a.route("GET", "/customers/{id}/lifetime-value", agentdesk.RoleAgent, "Sum of the customer's orders not refunded or cancelled, per currency, in cents (agent+)",
		s.lifetimeValue, doc{Response: lifetimeValue{}})
	a.route("POST", "/orders", agentdesk.RoleSupervisor, "Record an order by hand or correct one by external_id (supervisor+): 201 new, 200 updated",
		s.postOrder, doc{Body: orderRequest{}, Response: agentdesk.Order{}, Status: 201, Idempotent: true})
	a.route("GET", "/orders", agentdesk.RoleAgent, "Find orders (agent+): by the shop's external_id, or a customer's by customer_id",
		s.findOrders, doc{Response: List[agentdesk.Order]{}, Query: []string{"external_id", "customer_id", "limit", "cursor"}})
	a.route("GET", "/orders/{id}", agentdesk.RoleAgent, "One order (agent+)",
		s.getOrder, doc{Response: agentdesk.Order{}})
}

type orderRequest struct {
	ExternalID  string                `json:"external_id"`
	CustomerID  int64                 `json:"customer_id"`
	AmountCents int64                 `json:"amount_cents"`
	Currency    string                `json:"currency"`
	Items       []agentdesk.OrderItem `json:"items"`
	Status      agentdesk.OrderStatus `json:"status"`
	PlacedAt    time.Time             `json:"placed_at"`
}

type lifetimeValue struct {
	CustomerID int64 `json:"customer_id"`
	// Totals in cents by ISO 4217 currency; currencies are never added up.
	Totals map[string]int64 `json:"totals"`
}

func (s *Server) customerOrders(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	items, next, err := s.store.Orders(r.Context(), actor.AccountID, id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

func (s *Server) lifetimeValue(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	totals, err := s.store.LifetimeValue(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, lifetimeValue{CustomerID: id, Totals: totals})
	return nil
}

func (s *Server) postOrder(w http.ResponseWriter, r *http.Request) error {
	var req orderRequest
	if err := decode(w, r, &req, 256<<10); err != nil {
		return err
	}
	if req.CustomerID <= 0 {
		return agentdesk.FieldError("customer_id", "is required")
	}
	o := &agentdesk.Order{ExternalID: req.ExternalID, CustomerID: req.CustomerID, AmountCents: req.AmountCents, Currency: req.Currency,
		Items: req.Items, Status: req.Status, PlacedAt: req.PlacedAt}
	actor, _ := actorOf(r.Context())
	created, err := s.store.UpsertOrder(r.Context(), actor.AccountID, o)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, o)
	return nil
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) error {
	return getByID(w, r, s.store.Order)
}

func (s *Server) findOrders(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	if ext := r.URL.Query().Get("external_id"); ext != "" {
		o, err := s.store.OrderByExternalID(r.Context(), actor.AccountID, ext)
		if agentdesk.IsKind(err, agentdesk.NotFound) {
			writeJSON(w, http.StatusOK, listOf([]agentdesk.Order{}, ""))
			return nil
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, listOf([]agentdesk.Order{*o}, ""))
		return nil
	}
	customer, err := queryID(r, "customer_id")
	if err != nil {
		return err
	}
	if customer == nil {
		// Listing every order of an account is a report, not a lookup.
		return agentdesk.FieldError("customer_id", "filter by external_id or customer_id")
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.store.Orders(r.Context(), actor.AccountID, *customer, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}
