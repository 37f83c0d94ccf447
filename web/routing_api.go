package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
)

// WithRouting serves the routing engine's REST API: queues, skills, agent
// capacity and skills, business hours (admin); presence and offers (agents);
// moves, priorities and forced presence (supervisors); live queue stats.
// The caller starts and stops the engine.
func WithRouting(e *routing.Engine) Option { return func(s *Server) { s.routing = e } }

func init() { registerAPI(mountRouting) }

func mountRouting(s *Server, a *apiRouter) {
	// Queues: everyone reads them (agents see the wallboard), admins change them.
	a.route("GET", "/queues", agentdesk.RoleAgent, "List the routing queues (agent+)", s.listQueues, doc{Response: List[routing.Queue]{}})
	a.route("POST", "/queues", agentdesk.RoleAdmin, "Create a routing queue (admin)", s.createQueue, doc{Body: routing.Queue{}, Response: routing.Queue{}, Status: 201})
	a.route("GET", "/queues/stats", agentdesk.RoleAgent, "Live stats of every queue: waiting, longest wait, EWT, agents available and busy, service level today (agent+)",
		s.queueStats, doc{Response: List[routing.QueueStats]{}})
	a.route("GET", "/queues/{id}", agentdesk.RoleAgent, "One routing queue (agent+)", s.getQueue, doc{Response: routing.Queue{}})
	a.route("PUT", "/queues/{id}", agentdesk.RoleAdmin, "Replace a queue's settings; waiting tasks keep their place (admin)", s.putQueue, doc{Body: routing.Queue{}, Response: routing.Queue{}})
	a.route("DELETE", "/queues/{id}", agentdesk.RoleAdmin, "Delete a queue that never had a task (admin)", s.deleteQueue, doc{Status: 204})
	a.route("PUT", "/queues/{id}/business-hours", agentdesk.RoleAdmin, "Replace a queue's opening hours, time zone and holidays (admin)",
		s.putBusinessHours, doc{Body: routing.BusinessHours{}, Response: routing.Queue{}})
	a.route("PUT", "/queue-defaults/{channel}", agentdesk.RoleAdmin, "Set the queue for a channel's contacts that name none (admin)",
		s.putDefaultQueue, doc{Body: defaultQueueRequest{}, Status: 204})

	a.route("GET", "/skills", agentdesk.RoleAgent, "List skills (agent+)", s.listSkills, doc{Response: List[routing.Skill]{}})
	a.route("POST", "/skills", agentdesk.RoleAdmin, "Create a skill (admin)", s.createSkill, doc{Body: skillRequest{}, Response: routing.Skill{}, Status: 201})
	a.route("DELETE", "/skills/{id}", agentdesk.RoleAdmin, "Delete a skill and take it from every agent (admin)", s.deleteSkill, doc{Status: 204})
	a.route("GET", "/agents/{id}/routing", agentdesk.RoleAgent, "An agent's skills and capacity (agent: own; supervisor+: anyone)", s.getAgentRouting, doc{Response: routing.AgentRouting{}})
	a.route("PUT", "/agents/{id}/skills", agentdesk.RoleAdmin, "Replace an agent's skills, name → level 1-5 (admin)", s.putAgentSkills, doc{Body: map[string]int{}, Response: routing.AgentRouting{}})
	a.route("PUT", "/agents/{id}/capacity", agentdesk.RoleAdmin, "Set how many voice, chat and email contacts an agent handles at once (admin)",
		s.putAgentCapacity, doc{Body: map[agentdesk.Channel]int{}, Response: routing.AgentRouting{}})

	a.route("GET", "/presence", agentdesk.RoleAgent, "My routing presence and load", s.getMyPresence, doc{Response: routing.Presence{}})
	a.route("PUT", "/presence", agentdesk.RoleAgent, "Set my presence: offline, available or away with a reason", s.putMyPresence, doc{Body: presenceRequest{}, Response: routing.Presence{}})
	a.route("GET", "/agents/presence", agentdesk.RoleSupervisor, "Every signed-in agent's presence and load (supervisor+)", s.listPresence, doc{Response: List[routing.Presence]{}})
	a.route("PUT", "/agents/{id}/presence", agentdesk.RoleSupervisor, "Force an agent's presence (supervisor+)", s.forcePresence, doc{Body: presenceRequest{}, Response: routing.Presence{}})

	a.route("GET", "/tasks/{id}", agentdesk.RoleAgent, "A routing task (agent: offered to or handled by me; supervisor+: any)", s.getTask, doc{Response: routing.Task{}})
	a.route("GET", "/tasks/{id}/events", agentdesk.RoleSupervisor, "A task's transitions, oldest first (supervisor+)", s.taskEvents, doc{Response: List[routing.TaskEvent]{}})
	a.route("GET", "/tasks/{id}/position", agentdesk.RoleAgent, "A waiting task's place in line and estimated wait (agent+)", s.taskPosition, doc{Response: routing.Position{}})
	a.route("POST", "/tasks/{id}/accept", agentdesk.RoleAgent, "Accept the offer of this task", s.acceptTask, doc{Response: routing.Task{}})
	a.route("POST", "/tasks/{id}/reject", agentdesk.RoleAgent, "Reject the offer; it goes to the next agent", s.rejectTask, doc{Body: rejectRequest{}, Response: routing.Task{}})
	a.route("POST", "/tasks/{id}/wrap-up", agentdesk.RoleAgent, "End the interaction and start wrap-up", s.wrapUpTask, doc{Response: routing.Task{}})
	a.route("POST", "/tasks/{id}/complete", agentdesk.RoleAgent, "Complete the task with its outcome: contact reason required, cancellation reason for cancellations",
		s.completeTask, doc{Body: agentdesk.Outcome{}, Response: routing.Task{}})
	a.route("POST", "/tasks/{id}/move", agentdesk.RoleSupervisor, "Move a waiting task to another queue, offer it to an agent, or transfer an assigned task (supervisor+)",
		s.moveTask, doc{Body: routing.MoveTarget{}, Response: routing.Task{}})
	a.route("PUT", "/tasks/{id}/priority", agentdesk.RoleSupervisor, "Change a task's priority (supervisor+)", s.setTaskPriority, doc{Body: priorityRequest{}, Response: routing.Task{}})
}

type defaultQueueRequest struct {
	QueueID int64 `json:"queue_id"`
}

type skillRequest struct {
	Name string `json:"name"`
}

type presenceRequest struct {
	State  routing.PresenceState `json:"state"`
	Reason string                `json:"reason,omitempty"`
}

type rejectRequest struct {
	Reason string `json:"reason,omitempty"`
}

type priorityRequest struct {
	Priority agentdesk.Priority `json:"priority"`
}

// audited returns the request's context under which the engine writes the
// audit entry of an admin's or supervisor's routing change in the change's
// own transaction: the change and its entry commit together or not at all.
// what gives the target and details once the change is made (a created
// queue's id is known only then).
func (s *Server) audited(r *http.Request, action string, what func() (target string, details any)) context.Context {
	actor, _ := actorOf(r.Context())
	return routing.AlsoInTx(r.Context(), func(ctx context.Context, tx pgx.Tx) error {
		target, details := what()
		return postgres.Audit(ctx, tx, actor, action, target, details)
	})
}

// engine returns the routing engine, or NotFound on a server run without one.
func (s *Server) engine() (*routing.Engine, error) {
	if s.routing == nil {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "routing is not enabled on this server")
	}
	return s.routing, nil
}

// routingCall is how a routing handler starts: the engine (NotFound when
// routing is off) and the caller.
func (s *Server) routingCall(r *http.Request) (*routing.Engine, agentdesk.Actor, error) {
	actor, _ := actorOf(r.Context())
	e, err := s.engine()
	return e, actor, err
}

// routingCallOn is routingCall for a route on /{id}; the engine is checked
// before the id.
func (s *Server) routingCallOn(r *http.Request) (*routing.Engine, agentdesk.Actor, int64, error) {
	e, actor, err := s.routingCall(r)
	if err != nil {
		return nil, actor, 0, err
	}
	id, err := pathID(r, "id")
	return e, actor, id, err
}

// listRouting answers with one of the engine's per-account lists.
func listRouting[T any](s *Server, w http.ResponseWriter, r *http.Request, list func(e *routing.Engine, ctx context.Context, accountID int64) ([]T, error)) error {
	e, actor, err := s.routingCall(r)
	if err != nil {
		return err
	}
	items, err := list(e, r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, ""))
	return nil
}

// writeFetched answers 200 with what fetch reads for the account and id;
// handlers that change something answer with its state read afresh.
func writeFetched[T any](w http.ResponseWriter, r *http.Request, fetch func(ctx context.Context, accountID, id int64) (T, error), accountID, id int64) error {
	v, err := fetch(r.Context(), accountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// signedInAgent is the caller as an agent; API tokens have no presence and
// take no offers.
func signedInAgent(r *http.Request) (agentdesk.Actor, error) {
	actor, _ := actorOf(r.Context())
	if !actor.IsAgent() {
		return actor, agentdesk.Errorf(agentdesk.Forbidden, "only a signed-in agent can do this")
	}
	return actor, nil
}

// anyCaller is the caller, whoever it is; the route's role has been checked.
func anyCaller(r *http.Request) (agentdesk.Actor, error) {
	actor, _ := actorOf(r.Context())
	return actor, nil
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) error {
	return listRouting(s, w, r, (*routing.Engine).Queues)
}

func (s *Server) createQueue(w http.ResponseWriter, r *http.Request) error {
	e, actor, err := s.routingCall(r)
	if err != nil {
		return err
	}
	var q routing.Queue
	if err := decode(w, r, &q, 64<<10); err != nil {
		return err
	}
	q.ID = 0
	ctx := s.audited(r, "queue.create", func() (string, any) { return fmt.Sprintf("queue:%d", q.ID), q })
	if err := e.CreateQueue(ctx, actor.AccountID, &q); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, q)
	return nil
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) error {
	e, err := s.engine()
	if err != nil {
		return err
	}
	return getByID(w, r, e.Queue)
}

func (s *Server) putQueue(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	var q routing.Queue
	if err := decode(w, r, &q, 64<<10); err != nil {
		return err
	}
	q.ID = id
	ctx := s.audited(r, "queue.update", func() (string, any) { return fmt.Sprintf("queue:%d", id), q })
	if err := e.UpdateQueue(ctx, actor.AccountID, &q); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

func (s *Server) deleteQueue(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	ctx := s.audited(r, "queue.delete", func() (string, any) { return fmt.Sprintf("queue:%d", id), nil })
	if err := e.DeleteQueue(ctx, actor.AccountID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putBusinessHours(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	var h routing.BusinessHours
	if err := decode(w, r, &h, 64<<10); err != nil {
		return err
	}
	ctx := s.audited(r, "queue.business_hours", func() (string, any) { return fmt.Sprintf("queue:%d", id), h })
	if err := e.SetBusinessHours(ctx, actor.AccountID, id, h); err != nil {
		return err
	}
	return writeFetched(w, r, e.Queue, actor.AccountID, id)
}

func (s *Server) putDefaultQueue(w http.ResponseWriter, r *http.Request) error {
	e, actor, err := s.routingCall(r)
	if err != nil {
		return err
	}
	var req defaultQueueRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	ch := agentdesk.Channel(chiURLParam(r, "channel"))
	if !ch.Valid() {
		return agentdesk.Errorf(agentdesk.NotFound, "no channel %q", ch)
	}
	if _, err := e.Queue(r.Context(), actor.AccountID, req.QueueID); err != nil {
		if agentdesk.IsKind(err, agentdesk.NotFound) {
			return agentdesk.FieldError("queue_id", "no such queue")
		}
		return err
	}
	ctx := s.audited(r, "queue.default", func() (string, any) {
		return fmt.Sprintf("queue:%d", req.QueueID), map[string]string{"channel": string(ch)}
	})
	if err := e.SetDefaultQueue(ctx, actor.AccountID, ch, req.QueueID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) queueStats(w http.ResponseWriter, r *http.Request) error {
	return listRouting(s, w, r, (*routing.Engine).QueueStats)
}

func (s *Server) listSkills(w http.ResponseWriter, r *http.Request) error {
	return listRouting(s, w, r, (*routing.Engine).Skills)
}

func (s *Server) createSkill(w http.ResponseWriter, r *http.Request) error {
	e, actor, err := s.routingCall(r)
	if err != nil {
		return err
	}
	var req skillRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	sk := routing.Skill{Name: req.Name}
	ctx := s.audited(r, "skill.create", func() (string, any) { return fmt.Sprintf("skill:%d", sk.ID), sk })
	if err := e.CreateSkill(ctx, actor.AccountID, &sk); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sk)
	return nil
}

func (s *Server) deleteSkill(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	ctx := s.audited(r, "skill.delete", func() (string, any) { return fmt.Sprintf("skill:%d", id), nil })
	if err := e.DeleteSkill(ctx, actor.AccountID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getAgentRouting(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	if !actor.Role.AtLeast(agentdesk.RoleSupervisor) && actor.AgentID != id {
		return agentdesk.Errorf(agentdesk.Forbidden, "agents see only their own skills and capacity")
	}
	return writeFetched(w, r, e.AgentRouting, actor.AccountID, id)
}

func (s *Server) putAgentSkills(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	skills := map[string]int{}
	if err := decode(w, r, &skills, 64<<10); err != nil {
		return err
	}
	ctx := s.audited(r, "agent.skills", func() (string, any) { return fmt.Sprintf("agent:%d", id), skills })
	if err := e.SetAgentSkills(ctx, actor.AccountID, id, skills); err != nil {
		return err
	}
	return writeFetched(w, r, e.AgentRouting, actor.AccountID, id)
}

func (s *Server) putAgentCapacity(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	capacity := map[agentdesk.Channel]int{}
	if err := decode(w, r, &capacity, 4<<10); err != nil {
		return err
	}
	ctx := s.audited(r, "agent.capacity", func() (string, any) { return fmt.Sprintf("agent:%d", id), capacity })
	if err := e.SetAgentCapacity(ctx, actor.AccountID, id, capacity); err != nil {
		return err
	}
	return writeFetched(w, r, e.AgentRouting, actor.AccountID, id)
}

func (s *Server) getMyPresence(w http.ResponseWriter, r *http.Request) error {
	e, err := s.engine()
	if err != nil {
		return err
	}
	actor, err := signedInAgent(r)
	if err != nil {
		return err
	}
	return writeFetched(w, r, e.Presence, actor.AccountID, actor.AgentID)
}

func (s *Server) putMyPresence(w http.ResponseWriter, r *http.Request) error {
	e, err := s.engine()
	if err != nil {
		return err
	}
	actor, err := signedInAgent(r)
	if err != nil {
		return err
	}
	var req presenceRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	if err := e.SetPresence(r.Context(), actor.AccountID, actor.AgentID, req.State, req.Reason); err != nil {
		return err
	}
	return writeFetched(w, r, e.Presence, actor.AccountID, actor.AgentID)
}

func (s *Server) forcePresence(w http.ResponseWriter, r *http.Request) error {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	var req presenceRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	ctx := s.audited(r, "agent.presence", func() (string, any) { return fmt.Sprintf("agent:%d", id), req })
	if err := e.ForcePresence(ctx, actor.AccountID, id, req.State, req.Reason, actor.AgentID); err != nil {
		return err
	}
	return writeFetched(w, r, e.Presence, actor.AccountID, id)
}

func (s *Server) listPresence(w http.ResponseWriter, r *http.Request) error {
	return listRouting(s, w, r, (*routing.Engine).Presences)
}

// visibleTask loads a task the caller may see: supervisors see every task,
// agents the ones offered to or handled by them.
func (s *Server) visibleTask(r *http.Request) (*routing.Engine, *routing.Task, error) {
	e, actor, id, err := s.routingCallOn(r)
	if err != nil {
		return nil, nil, err
	}
	t, err := e.Task(r.Context(), actor.AccountID, id)
	if err != nil {
		return nil, nil, err
	}
	if !actor.Role.AtLeast(agentdesk.RoleSupervisor) {
		mine := (t.OfferedTo != nil && *t.OfferedTo == actor.AgentID) || (t.AgentID != nil && *t.AgentID == actor.AgentID)
		if !mine {
			return nil, nil, agentdesk.Errorf(agentdesk.NotFound, "task not found")
		}
	}
	return e, t, nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	_, t, err := s.visibleTask(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) taskEvents(w http.ResponseWriter, r *http.Request) error {
	e, t, err := s.visibleTask(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	evs, err := e.TaskEvents(r.Context(), actor.AccountID, t.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(evs, ""))
	return nil
}

func (s *Server) taskPosition(w http.ResponseWriter, r *http.Request) error {
	e, err := s.engine()
	if err != nil {
		return err
	}
	return getByID(w, r, e.Position)
}

// taskAction runs an action on the path's task by the caller that who
// accepts (checked after the engine and the id) and answers with the task.
func (s *Server) taskAction(w http.ResponseWriter, r *http.Request, who func(*http.Request) (agentdesk.Actor, error), act func(e *routing.Engine, actor agentdesk.Actor, taskID int64) error) error {
	e, _, id, err := s.routingCallOn(r)
	if err != nil {
		return err
	}
	actor, err := who(r)
	if err != nil {
		return err
	}
	if err := act(e, actor, id); err != nil {
		return err
	}
	return writeFetched(w, r, e.Task, actor.AccountID, id)
}

func (s *Server) acceptTask(w http.ResponseWriter, r *http.Request) error {
	return s.taskAction(w, r, signedInAgent, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		return e.Accept(r.Context(), a.AccountID, a.AgentID, id)
	})
}

func (s *Server) rejectTask(w http.ResponseWriter, r *http.Request) error {
	var req rejectRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req, 4<<10); err != nil {
			return err
		}
	}
	return s.taskAction(w, r, signedInAgent, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		return e.Reject(r.Context(), a.AccountID, a.AgentID, id, req.Reason)
	})
}

func (s *Server) wrapUpTask(w http.ResponseWriter, r *http.Request) error {
	return s.taskAction(w, r, signedInAgent, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		return e.EndInteraction(r.Context(), a.AccountID, a.AgentID, id)
	})
}

func (s *Server) completeTask(w http.ResponseWriter, r *http.Request) error {
	var o agentdesk.Outcome
	if err := decode(w, r, &o, 16<<10); err != nil {
		return err
	}
	return s.taskAction(w, r, signedInAgent, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		return e.Complete(r.Context(), a.AccountID, a.AgentID, id, o)
	})
}

func (s *Server) moveTask(w http.ResponseWriter, r *http.Request) error {
	var to routing.MoveTarget
	if err := decode(w, r, &to, 4<<10); err != nil {
		return err
	}
	return s.taskAction(w, r, anyCaller, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		ctx := s.audited(r, "task.move", func() (string, any) { return fmt.Sprintf("task:%d", id), to })
		return e.MoveTask(ctx, a.AccountID, id, to, a.AgentID)
	})
}

func (s *Server) setTaskPriority(w http.ResponseWriter, r *http.Request) error {
	var req priorityRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	return s.taskAction(w, r, anyCaller, func(e *routing.Engine, a agentdesk.Actor, id int64) error {
		ctx := s.audited(r, "task.priority", func() (string, any) { return fmt.Sprintf("task:%d", id), req })
		return e.SetPriority(ctx, a.AccountID, id, req.Priority, a.AgentID)
	})
}
