package web

import (
	"context"
	"fmt"
	"net/http"

	"agentdesk/agentdesk"
	"agentdesk/routing"
)

// The customer's side of routing, for channel integrations (a telephony
// bridge, a social connector, a shop's "call me back" form) that hold an API
// token: queue a contact, report that the customer left, turn a waiting
// contact into a callback, or withdraw it. The built-in channels (chat,
// email, forms) do the same inside their own transactions.
func init() { registerAPI(mountRoutingTasks) }

func mountRoutingTasks(s *Server, a *apiRouter) {
	a.route("POST", "/tasks", agentdesk.RoleSupervisor, "Queue a contact for routing: channel, queue (default: the channel's), priority, ticket, customer, required skills, attributes (supervisor+; channel integrations)",
		s.createTask, doc{Body: taskRequest{}, Response: routing.Task{}, Status: 201, Idempotent: true})
	a.route("POST", "/tasks/{id}/abandon", agentdesk.RoleSupervisor, "The customer left before an agent took the contact: the wait and the reason are kept, an offer is withdrawn (supervisor+; channel integrations)",
		s.abandonTask, doc{Body: endTaskRequest{}, Response: routing.Task{}})
	a.route("POST", "/tasks/{id}/callback", agentdesk.RoleSupervisor, "The waiting customer asks to be called back: an outbound call task takes the contact's place in line (supervisor+; channel integrations)",
		s.callbackTask, doc{Body: callbackRequest{}, Response: routing.Task{}, Status: 201, Idempotent: true})
	a.route("POST", "/tasks/{id}/cancel", agentdesk.RoleSupervisor, "Withdraw a waiting contact that no longer needs an agent (supervisor+)",
		s.cancelTask, doc{Body: endTaskRequest{}, Response: routing.Task{}})
}

// taskRequest is a contact an integration queues.
type taskRequest struct {
	Channel    agentdesk.Channel  `json:"channel"`
	QueueID    int64              `json:"queue_id,omitempty"`
	Priority   agentdesk.Priority `json:"priority,omitempty"`
	TicketID   int64              `json:"ticket_id,omitempty"`
	CustomerID int64              `json:"customer_id,omitempty"`
	Skills     map[string]int     `json:"skills,omitempty"`
	Attributes map[string]any     `json:"attributes,omitempty"`
}

type endTaskRequest struct {
	Reason string `json:"reason,omitempty"`
}

type callbackRequest struct {
	Number string `json:"number"`
}

// maxReason bounds the free text an integration gives for an abandon or a
// cancellation; it ends up in reports.
const maxReason = 500

func (req endTaskRequest) validate() error {
	if len(req.Reason) > maxReason {
		return agentdesk.FieldError("reason", "must be at most %d bytes", maxReason)
	}
	return nil
}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	e, actor, err := s.routingCall(r)
	if err != nil {
		return err
	}
	var req taskRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	if req.Channel == "" {
		return agentdesk.FieldError("channel", "is required")
	}
	id, err := e.Enqueue(r.Context(), agentdesk.TaskRequest{AccountID: actor.AccountID, Channel: req.Channel, QueueID: req.QueueID,
		Priority: req.Priority, TicketID: req.TicketID, CustomerID: req.CustomerID, Skills: req.Skills, Attributes: req.Attributes})
	if err != nil {
		return err
	}
	t, err := e.Task(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

// endTask reads the reason and ends the path's waiting task with end.
func (s *Server) endTask(w http.ResponseWriter, r *http.Request, end func(e *routing.Engine, accountID, taskID int64, reason string) error) error {
	var req endTaskRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req, 4<<10); err != nil {
			return err
		}
	}
	if err := req.validate(); err != nil {
		return err
	}
	return s.taskAction(w, r, anyCaller, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		return end(e, a.AccountID, id, req.Reason)
	})
}

// auditedEnd is an endTask action recorded in the audit log with the change.
func (s *Server) auditedEnd(r *http.Request, action string, end func(e *routing.Engine, ctx context.Context, accountID, taskID int64, reason string) error) func(e *routing.Engine, accountID, taskID int64, reason string) error {
	return func(e *routing.Engine, acct, id int64, reason string) error {
		ctx := s.audited(r, action, func() (string, any) { return fmt.Sprintf("task:%d", id), map[string]string{"reason": reason} })
		return end(e, ctx, acct, id, reason)
	}
}

func (s *Server) abandonTask(w http.ResponseWriter, r *http.Request) error {
	return s.endTask(w, r, s.auditedEnd(r, "task.abandon", (*routing.Engine).Abandon))
}

func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) error {
	return s.endTask(w, r, s.auditedEnd(r, "task.cancel", (*routing.Engine).Cancel))
}

func (s *Server) callbackTask(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	var req callbackRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	ctx := s.audited(r, "task.callback", func() (string, any) { return fmt.Sprintf("task:%d", id), req })
	callID, err := e.RequestCallback(ctx, actor.AccountID, id, req.Number)
	if err != nil {
		return err
	}
	t, err := e.Task(r.Context(), actor.AccountID, callID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}
