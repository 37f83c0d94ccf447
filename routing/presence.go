package routing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// PresenceState is what an agent is doing as far as routing is concerned.
// Agents choose offline, available or away; the engine sets wrap_up after an
// interaction ends and reports "busy" for an available agent who has work.
type PresenceState string

const (
	Offline   PresenceState = "offline"
	Available PresenceState = "available"
	Busy      PresenceState = "busy" // shown only: available with work in hand
	Away      PresenceState = "away"
	WrapUp    PresenceState = "wrap_up"
)

// MissedOffersReason is the away reason set after too many offers time out.
const MissedOffersReason = "missed offers"

// Presence is an agent's routing state and current load.
type Presence struct {
	AgentID      int64                     `json:"agent_id"`
	State        PresenceState             `json:"state"`
	Reason       string                    `json:"reason,omitempty"`
	Since        time.Time                 `json:"since"`
	WrapUpUntil  *time.Time                `json:"wrap_up_until"`
	MissedOffers int                       `json:"missed_offers"`
	Load         map[agentdesk.Channel]int `json:"load"`
}

const selectPresence = `
SELECT agent_id, state, away_reason, since, wrap_up_until, missed_offers, load_voice, load_chat, load_email
FROM agent_presence WHERE account_id = $1`

func scanPresence(row pgx.Row) (*Presence, error) {
	var p Presence
	var v, c, m int
	if err := row.Scan(&p.AgentID, &p.State, &p.Reason, &p.Since, &p.WrapUpUntil, &p.MissedOffers, &v, &c, &m); err != nil {
		return nil, err
	}
	p.Load = map[agentdesk.Channel]int{agentdesk.ChannelVoice: v, agentdesk.ChannelChat: c, agentdesk.ChannelEmail: m}
	if p.State == Available && v+c+m > 0 {
		p.State = Busy
	}
	return &p, nil
}

// Presence returns an agent's routing state; an agent never signed in is offline.
func (e *Engine) Presence(ctx context.Context, accountID, agentID int64) (*Presence, error) {
	p, err := scanPresence(e.db.QueryRow(ctx, selectPresence+` AND agent_id = $2`, accountID, agentID))
	if err == pgx.ErrNoRows {
		var exists bool
		if err := e.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE account_id = $1 AND id = $2)`, accountID, agentID).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			return nil, agentdesk.Errorf(agentdesk.NotFound, "agent not found")
		}
		return &Presence{AgentID: agentID, State: Offline, Load: map[agentdesk.Channel]int{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Presences lists the routing state of every agent who has signed in.
func (e *Engine) Presences(ctx context.Context, accountID int64) ([]Presence, error) {
	rows, err := e.db.Query(ctx, selectPresence+` ORDER BY agent_id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Presence{}
	for rows.Next() {
		p, err := scanPresence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// SetPresence is the agent changing their own state: offline, available or
// away (with a reason). Going offline or away takes back pending offers; work
// already accepted stays with the agent.
func (e *Engine) SetPresence(ctx context.Context, accountID, agentID int64, state PresenceState, reason string) error {
	return e.setPresence(ctx, accountID, agentID, state, reason, 0)
}

// ForcePresence is a supervisor changing an agent's state.
func (e *Engine) ForcePresence(ctx context.Context, accountID, agentID int64, state PresenceState, reason string, bySupervisor int64) error {
	return e.setPresence(ctx, accountID, agentID, state, reason, bySupervisor)
}

func (e *Engine) setPresence(ctx context.Context, accountID, agentID int64, state PresenceState, reason string, by int64) error {
	reason = strings.TrimSpace(reason)
	switch state {
	case Offline, Available:
		reason = ""
	case Away:
		if reason == "" {
			reason = "away"
		}
		if len(reason) > 100 {
			return agentdesk.FieldError("reason", "must be at most 100 characters")
		}
	default:
		return agentdesk.FieldError("state", "must be offline, available or away")
	}
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		now := e.now()
		if _, err := tx.Exec(ctx, `
INSERT INTO agent_presence (account_id, agent_id, since, cap_voice, cap_chat, cap_email)
SELECT account_id, id, $3, coalesce((capacity->>'voice')::int, 1), coalesce((capacity->>'chat')::int, 3),
	coalesce((capacity->>'email')::int, 5)
FROM agents WHERE account_id = $1 AND id = $2
ON CONFLICT (agent_id) DO NOTHING`, accountID, agentID, now); err != nil {
			return translate(err, "agent")
		}
		var from PresenceState
		var owner int64
		err := tx.QueryRow(ctx, `SELECT state, account_id FROM agent_presence WHERE agent_id = $1 FOR UPDATE`, agentID).Scan(&from, &owner)
		if err == pgx.ErrNoRows {
			return agentdesk.Errorf(agentdesk.NotFound, "agent not found")
		}
		if err != nil {
			return err
		}
		if owner != accountID {
			return agentdesk.Errorf(agentdesk.NotFound, "agent not found")
		}
		return e.changePresence(ctx, tx, accountID, agentID, from, state, reason, by, now)
	})
	if err != nil || state == Available {
		return err
	}
	return e.revokeOffers(ctx, accountID, agentID, "agent "+string(state))
}

// changePresence writes a presence change of a locked presence row.
func (e *Engine) changePresence(ctx context.Context, tx pgx.Tx, accountID, agentID int64, from, to PresenceState, reason string, by int64, now time.Time) error {
	var until *time.Time
	if to == WrapUp {
		u := now.Add(e.cfg.WrapUp)
		until = &u
	}
	if _, err := tx.Exec(ctx, `
UPDATE agent_presence SET state = $2, away_reason = $3, since = $4, wrap_up_until = $5,
	missed_offers = CASE WHEN $2 = 'available' THEN 0 ELSE missed_offers END
WHERE agent_id = $1`, agentID, string(to), reason, now, until); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO agent_presence_events (account_id, agent_id, from_state, to_state, reason, by_agent_id, at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, accountID, agentID, string(from), string(to), reason, nullID(by), now); err != nil {
		return err
	}
	p := Presence{AgentID: agentID, State: to, Reason: reason, Since: now, WrapUpUntil: until}
	for _, s := range []string{AgentStream(agentID), SupervisorStream(accountID)} {
		if err := e.pub.Publish(ctx, tx, Event{AccountID: accountID, Stream: s, Type: "presence", Data: p}); err != nil {
			return err
		}
	}
	if to == Available {
		if from != WrapUp {
			// Someone joined who has not turned anything down yet: tasks
			// pausing after every other agent refused may go to them now.
			// SKIP LOCKED: a task another transaction holds keeps its pause
			// rather than make this one wait (out of the task-then-agent
			// lock order).
			if _, err := tx.Exec(ctx, `
UPDATE tasks SET retry_at = NULL WHERE id IN (
	SELECT id FROM tasks WHERE account_id = $1 AND state = 'queued' AND retry_at IS NOT NULL FOR UPDATE SKIP LOCKED)`, accountID); err != nil {
				return err
			}
		}
		return e.wake(ctx, tx, accountID)
	}
	return nil
}

// revokeOffers puts an agent's pending offers back in line, one transaction
// per task so the task lock is always taken before the agent's.
func (e *Engine) revokeOffers(ctx context.Context, accountID, agentID int64, reason string) error {
	rows, err := e.db.Query(ctx, `SELECT id FROM tasks WHERE account_id = $1 AND offered_to = $2 AND state = 'offered'`, accountID, agentID)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, id := range ids {
		err := e.inTx(ctx, func(tx pgx.Tx) error {
			t, err := lockTask(ctx, tx, accountID, id)
			if err != nil {
				return err
			}
			if t.state != StateOffered || t.offeredTo != agentID {
				return nil
			}
			return e.requeue(ctx, tx, t, reason, false)
		})
		if err != nil {
			return fmt.Errorf("revoke offer of task %d: %w", id, err)
		}
	}
	return nil
}

// releaseOffer gives back the capacity an offer reserved and tells the agent
// the offer is gone. missed counts a timeout towards the agent's missed
// offers and sets them away when there are too many in a row.
func (e *Engine) releaseOffer(ctx context.Context, tx pgx.Tx, t *lockedTask, reason string, missed bool) error {
	col := loadColumn(t.capChannel)
	var state PresenceState
	var misses int
	err := tx.QueryRow(ctx, `
UPDATE agent_presence SET `+col+` = `+col+` - 1,
	missed_offers = missed_offers + CASE WHEN $2 THEN 1 ELSE 0 END
WHERE agent_id = $1
RETURNING state, missed_offers`, t.offeredTo, missed).Scan(&state, &misses)
	if err != nil {
		return fmt.Errorf("release offer of task %d: %w", t.id, err)
	}
	if err := e.pub.Publish(ctx, tx, Event{AccountID: t.accountID, Stream: AgentStream(t.offeredTo), Type: "offer_revoked",
		Data: TaskChange{TaskID: t.id, State: StateQueued, Reason: reason}}); err != nil {
		return err
	}
	if missed && misses >= e.cfg.MaxMissedOffers && state == Available {
		return e.changePresence(ctx, tx, t.accountID, t.offeredTo, state, Away, MissedOffersReason, 0, e.now())
	}
	return nil
}

// requeue returns an offered task to the line, keeping its place.
// exclude keeps the agent from being offered it again while others can take it.
func (e *Engine) requeue(ctx context.Context, tx pgx.Tx, t *lockedTask, reason string, missed bool) error {
	if err := e.releaseOffer(ctx, tx, t, reason, missed); err != nil {
		return err
	}
	now := e.now()
	if _, err := tx.Exec(ctx, `
UPDATE tasks SET state = 'queued', offered_to = NULL, offer_expires_at = NULL, updated_at = $3,
	excluded_agents = array_append(excluded_agents, $4)
WHERE account_id = $1 AND id = $2`, t.accountID, t.id, now, t.offeredTo); err != nil {
		return err
	}
	if err := logTransition(ctx, tx, t.accountID, t.id, StateOffered, StateQueued, t.offeredTo, t.queueID, reason, now); err != nil {
		return err
	}
	return e.wake(ctx, tx, t.accountID)
}
