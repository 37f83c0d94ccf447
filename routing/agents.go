package routing

import (
	"context"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Skill is a named ability agents have at a level 1..5.
type Skill struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// CreateSkill adds the skill named sk.Name (or finds the existing one of that
// name) and sets sk.ID.
func (e *Engine) CreateSkill(ctx context.Context, accountID int64, sk *Skill) error {
	sk.Name = strings.TrimSpace(sk.Name)
	if sk.Name == "" || len(sk.Name) > 100 {
		return agentdesk.FieldError("name", "must be 1-100 characters")
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		return translate(tx.QueryRow(ctx, `
INSERT INTO skills (account_id, name) VALUES ($1, $2)
ON CONFLICT (account_id, name) DO UPDATE SET name = EXCLUDED.name
RETURNING id`, accountID, sk.Name).Scan(&sk.ID), "skill")
	})
}

// Skills lists the account's skills by name.
func (e *Engine) Skills(ctx context.Context, accountID int64) ([]Skill, error) {
	rows, err := e.db.Query(ctx, `SELECT id, name FROM skills WHERE account_id = $1 ORDER BY name`, accountID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Skill])
}

// DeleteSkill removes a skill from the account and from every agent.
func (e *Engine) DeleteSkill(ctx context.Context, accountID, skillID int64) error {
	return e.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM skills WHERE account_id = $1 AND id = $2`, accountID, skillID)
		if err != nil {
			return translate(err, "skill")
		}
		if tag.RowsAffected() == 0 {
			return agentdesk.Errorf(agentdesk.NotFound, "skill not found")
		}
		return nil
	})
}

// AgentRouting is what routing knows of an agent: skills and capacity.
type AgentRouting struct {
	AgentID  int64                     `json:"agent_id"`
	Skills   map[string]int            `json:"skills"`
	Capacity map[agentdesk.Channel]int `json:"capacity"`
}

// AgentRouting returns an agent's skills and capacity.
func (e *Engine) AgentRouting(ctx context.Context, accountID, agentID int64) (*AgentRouting, error) {
	a := AgentRouting{AgentID: agentID, Skills: map[string]int{}}
	if err := e.db.QueryRow(ctx, `SELECT capacity FROM agents WHERE account_id = $1 AND id = $2`, accountID, agentID).Scan(&a.Capacity); err != nil {
		return nil, translate(err, "agent")
	}
	rows, err := e.db.Query(ctx, `
SELECT k.name, s.level FROM agent_skills s JOIN skills k ON k.id = s.skill_id
WHERE s.account_id = $1 AND s.agent_id = $2`, accountID, agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		var l int
		if err := rows.Scan(&n, &l); err != nil {
			return nil, err
		}
		a.Skills[n] = l
	}
	return &a, rows.Err()
}

// SetAgentSkills replaces an agent's skills (name → level 1..5), creating
// skills the account does not have yet.
func (e *Engine) SetAgentSkills(ctx context.Context, accountID, agentID int64, skills map[string]int) error {
	if err := validSkills("skills", skills); err != nil {
		return err
	}
	names := make([]string, 0, len(skills))
	for n := range skills {
		names = append(names, n)
	}
	sort.Strings(names)
	return e.inTx(ctx, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE account_id = $1 AND id = $2)`, accountID, agentID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return agentdesk.Errorf(agentdesk.NotFound, "agent not found")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM agent_skills WHERE account_id = $1 AND agent_id = $2`, accountID, agentID); err != nil {
			return err
		}
		for _, n := range names {
			if _, err := tx.Exec(ctx, `
WITH k AS (
	INSERT INTO skills (account_id, name) VALUES ($1, $3)
	ON CONFLICT (account_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id
)
INSERT INTO agent_skills (account_id, agent_id, skill_id, level) SELECT $1, $2, id, $4 FROM k`,
				accountID, agentID, n, skills[n]); err != nil {
				return translate(err, "agent skill")
			}
		}
		return e.wake(ctx, tx, accountID)
	})
}

// SetAgentCapacity sets how many contacts of each channel an agent handles at
// once. Lowering it below the current load takes no work away; the agent
// just gets no more until below it.
func (e *Engine) SetAgentCapacity(ctx context.Context, accountID, agentID int64, capacity map[agentdesk.Channel]int) error {
	for ch, n := range capacity {
		if ch != agentdesk.ChannelVoice && ch != agentdesk.ChannelChat && ch != agentdesk.ChannelEmail {
			return agentdesk.FieldError("capacity", "capacity is set per voice, chat or email, not %q", ch)
		}
		if n < 0 || n > 50 {
			return agentdesk.FieldError("capacity", "must be between 0 and 50")
		}
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE agents SET capacity = capacity || $3 WHERE account_id = $1 AND id = $2`, accountID, agentID, capacity)
		if err != nil {
			return translate(err, "agent")
		}
		if tag.RowsAffected() == 0 {
			return agentdesk.Errorf(agentdesk.NotFound, "agent not found")
		}
		return e.wake(ctx, tx, accountID)
	})
}
