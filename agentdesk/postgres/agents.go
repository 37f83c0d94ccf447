package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

const agentColumns = `a.id, a.email, a.name, a.role, a.capacity, a.active, a.created_at,
	coalesce((SELECT jsonb_object_agg(sk.name, s.level) FROM agent_skills s JOIN skills sk ON sk.id = s.skill_id WHERE s.agent_id = a.id), '{}'),
	coalesce((SELECT array_agg(team_id ORDER BY team_id) FROM team_members m WHERE m.agent_id = a.id), '{}')`

func scanAgent(row pgx.Row, accountID int64) (*agentdesk.Agent, error) {
	a := &agentdesk.Agent{AccountID: accountID}
	var capacity, skills []byte
	if err := row.Scan(&a.ID, &a.Email, &a.Name, &a.Role, &capacity, &a.Active, &a.CreatedAt, &skills, &a.TeamIDs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(capacity, &a.Capacity); err != nil {
		return nil, fmt.Errorf("agent %d capacity: %w", a.ID, err)
	}
	if err := json.Unmarshal(skills, &a.Skills); err != nil {
		return nil, fmt.Errorf("agent %d skills: %w", a.ID, err)
	}
	return a, nil
}

// CreateAgent adds a user with its skills and teams. passwordHash may be ""
// for users who sign in some other way (they cannot log in with a password).
func (s *Store) CreateAgent(ctx context.Context, accountID int64, a *agentdesk.Agent, passwordHash string) error {
	if err := a.Validate(); err != nil {
		return err
	}
	capacity, _ := json.Marshal(a.Capacity)
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO agents (account_id, email, name, role, password_hash, capacity, active)
			VALUES ($1, $2, $3, $4, $5, $6, true) RETURNING id, created_at, active`,
			accountID, a.Email, a.Name, a.Role, passwordHash, capacity).Scan(&a.ID, &a.CreatedAt, &a.Active)
		if err != nil {
			return err
		}
		a.AccountID = accountID
		return setAgentSkillsAndTeams(ctx, tx, accountID, a)
	}), "agent")
}

// setAgentSkillsAndTeams replaces the agent's skills (creating skill names on
// first use) and team memberships.
func setAgentSkillsAndTeams(ctx context.Context, tx pgx.Tx, accountID int64, a *agentdesk.Agent) error {
	if _, err := tx.Exec(ctx, `DELETE FROM agent_skills WHERE agent_id = $1`, a.ID); err != nil {
		return err
	}
	for name, level := range a.Skills {
		_, err := tx.Exec(ctx, `WITH sk AS (
				INSERT INTO skills (account_id, name) VALUES ($1, $2)
				ON CONFLICT (account_id, name) DO UPDATE SET name = excluded.name RETURNING id)
			INSERT INTO agent_skills (account_id, agent_id, skill_id, level) SELECT $1, $3, id, $4 FROM sk`,
			accountID, name, a.ID, level)
		if err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM team_members WHERE agent_id = $1`, a.ID); err != nil {
		return err
	}
	for _, team := range a.TeamIDs {
		_, err := tx.Exec(ctx, `INSERT INTO team_members (account_id, team_id, agent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, accountID, team, a.ID)
		if err != nil {
			return err
		}
	}
	return nil
}

// Agent returns one agent.
func (s *Store) Agent(ctx context.Context, accountID, id int64) (*agentdesk.Agent, error) {
	a, err := scanAgent(s.db.QueryRow(ctx, `SELECT `+agentColumns+` FROM agents a WHERE a.account_id = $1 AND a.id = $2`, accountID, id), accountID)
	return a, translate(err, "agent")
}

// Agents lists agents by id.
func (s *Store) Agents(ctx context.Context, accountID int64, p agentdesk.Page) ([]agentdesk.Agent, string, error) {
	p = p.Normalize()
	after, err := idCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, `SELECT `+agentColumns+` FROM agents a WHERE a.account_id = $1 AND a.id > $2 ORDER BY a.id LIMIT $3`,
		accountID, after, p.Limit+1)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []agentdesk.Agent
	for rows.Next() {
		a, err := scanAgent(rows, accountID)
		if err != nil {
			return nil, "", err
		}
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		next = encodeIDCursor(out[len(out)-1].ID)
	}
	return out, next, nil
}

// UpdateAgent replaces the caller-settable fields of an agent.
func (s *Store) UpdateAgent(ctx context.Context, accountID int64, a *agentdesk.Agent) error {
	return InTx(ctx, s.db, func(tx pgx.Tx) error { return UpdateAgentTx(ctx, tx, accountID, a) })
}

// UpdateAgentTx is UpdateAgent inside the caller's transaction, for callers
// that must commit something with the change (the event that tells open
// websockets the agent's rights changed).
func UpdateAgentTx(ctx context.Context, tx pgx.Tx, accountID int64, a *agentdesk.Agent) error {
	if err := a.Validate(); err != nil {
		return err
	}
	capacity, _ := json.Marshal(a.Capacity)
	tag, err := tx.Exec(ctx, `UPDATE agents SET email = $3, name = $4, role = $5, capacity = $6, active = $7
		WHERE account_id = $1 AND id = $2`, accountID, a.ID, a.Email, a.Name, a.Role, capacity, a.Active)
	if err != nil {
		return translate(err, "agent")
	}
	if tag.RowsAffected() == 0 {
		return agentdesk.Errorf(agentdesk.NotFound, "agent not found")
	}
	return translate(setAgentSkillsAndTeams(ctx, tx, accountID, a), "agent")
}

const teamColumns = `t.id, t.name, t.private, t.created_at,
	coalesce((SELECT array_agg(agent_id ORDER BY agent_id) FROM team_members m WHERE m.team_id = t.id), '{}')`

func scanTeam(row pgx.Row, accountID int64) (*agentdesk.Team, error) {
	t := &agentdesk.Team{AccountID: accountID}
	err := row.Scan(&t.ID, &t.Name, &t.Private, &t.CreatedAt, &t.MemberIDs)
	return t, err
}

// CreateTeam adds a team with its members.
func (s *Store) CreateTeam(ctx context.Context, accountID int64, t *agentdesk.Team) error {
	return InTx(ctx, s.db, func(tx pgx.Tx) error { return CreateTeamTx(ctx, tx, accountID, t) })
}

// CreateTeamTx is CreateTeam inside the caller's transaction.
func CreateTeamTx(ctx context.Context, tx pgx.Tx, accountID int64, t *agentdesk.Team) error {
	if err := t.Validate(); err != nil {
		return err
	}
	err := tx.QueryRow(ctx, `INSERT INTO teams (account_id, name, private) VALUES ($1, $2, $3) RETURNING id, created_at`,
		accountID, t.Name, t.Private).Scan(&t.ID, &t.CreatedAt)
	if err != nil {
		return translate(err, "team")
	}
	t.AccountID = accountID
	return translate(setTeamMembers(ctx, tx, accountID, t), "team")
}

func setTeamMembers(ctx context.Context, tx pgx.Tx, accountID int64, t *agentdesk.Team) error {
	if _, err := tx.Exec(ctx, `DELETE FROM team_members WHERE team_id = $1`, t.ID); err != nil {
		return err
	}
	for _, agent := range t.MemberIDs {
		_, err := tx.Exec(ctx, `INSERT INTO team_members (account_id, team_id, agent_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, accountID, t.ID, agent)
		if err != nil {
			return err
		}
	}
	return nil
}

// Team returns one team.
func (s *Store) Team(ctx context.Context, accountID, id int64) (*agentdesk.Team, error) {
	t, err := scanTeam(s.db.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.account_id = $1 AND t.id = $2`, accountID, id), accountID)
	return t, translate(err, "team")
}

// Teams lists all teams of an account (a handful, so no paging).
func (s *Store) Teams(ctx context.Context, accountID int64) ([]agentdesk.Team, error) {
	rows, err := s.db.Query(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.account_id = $1 ORDER BY t.name`, accountID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.Team, error) {
		t, err := scanTeam(r, accountID)
		return *t, err
	})
}

// UpdateTeam replaces a team's name, privacy and members.
func (s *Store) UpdateTeam(ctx context.Context, accountID int64, t *agentdesk.Team) error {
	return InTx(ctx, s.db, func(tx pgx.Tx) error { return UpdateTeamTx(ctx, tx, accountID, t) })
}

// UpdateTeamTx is UpdateTeam inside the caller's transaction.
func UpdateTeamTx(ctx context.Context, tx pgx.Tx, accountID int64, t *agentdesk.Team) error {
	if err := t.Validate(); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE teams SET name = $3, private = $4 WHERE account_id = $1 AND id = $2`, accountID, t.ID, t.Name, t.Private)
	if err != nil {
		return translate(err, "team")
	}
	if tag.RowsAffected() == 0 {
		return agentdesk.Errorf(agentdesk.NotFound, "team not found")
	}
	return translate(setTeamMembers(ctx, tx, accountID, t), "team")
}

// AgentsOutsideTeamTx lists the active agents (role agent: supervisors see
// every team) who are not members of a team: whose sight changes when the
// team turns private.
func AgentsOutsideTeamTx(ctx context.Context, tx pgx.Tx, accountID, teamID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT a.id FROM agents a
		WHERE a.account_id = $1 AND a.active AND a.role = 'agent'
		  AND NOT EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = $2 AND m.agent_id = a.id)
		ORDER BY a.id`, accountID, teamID)
	if err != nil {
		return nil, fmt.Errorf("agents outside team %d: %w", teamID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}
