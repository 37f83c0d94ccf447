package agentdesk

import (
	"context"
	"strings"
	"time"
)

// Role decides what a user or API token may do. Roles are ordered: a
// supervisor can do what an agent can, an admin what a supervisor can.
type Role string

const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

func (r Role) rank() int {
	switch r {
	case RoleAgent:
		return 1
	case RoleSupervisor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// AtLeast reports whether r includes the rights of min.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() && r.rank() > 0 }

// Default capacities per channel: how many contacts an agent handles at once.
var DefaultCapacity = map[Channel]int{ChannelVoice: 1, ChannelChat: 3, ChannelEmail: 5}

// Agent is a user of the desk: an agent, a supervisor or an admin.
type Agent struct {
	ID        int64           `json:"id"`
	AccountID int64           `json:"-"`
	Email     string          `json:"email"`
	Name      string          `json:"name"`
	Role      Role            `json:"role"`
	Capacity  map[Channel]int `json:"capacity"`
	Skills    map[string]int  `json:"skills"` // skill name → level 1..5
	TeamIDs   []int64         `json:"team_ids"`
	Active    bool            `json:"active"`
	CreatedAt time.Time       `json:"created_at"`
}

// Validate checks and normalises the fields a caller sets.
func (a *Agent) Validate() error {
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" || len(a.Name) > 200 {
		return FieldError("name", "must be 1-200 characters")
	}
	email, err := NormalizeEmail(a.Email)
	if err != nil {
		return err
	}
	a.Email = email
	if a.Role == "" {
		a.Role = RoleAgent
	}
	if !a.Role.Valid() {
		return FieldError("role", "must be one of agent, supervisor, admin")
	}
	if a.Capacity == nil {
		a.Capacity = map[Channel]int{}
	}
	for ch, n := range DefaultCapacity {
		if _, ok := a.Capacity[ch]; !ok {
			a.Capacity[ch] = n
		}
	}
	for ch, n := range a.Capacity {
		if ch != ChannelVoice && ch != ChannelChat && ch != ChannelEmail {
			return FieldError("capacity", "capacity is set per voice, chat or email, not %q", ch)
		}
		if n < 0 || n > 50 {
			return FieldError("capacity", "must be between 0 and 50")
		}
	}
	for name, lvl := range a.Skills {
		if name == "" || len(name) > 100 {
			return FieldError("skills", "skill names must be 1-100 characters")
		}
		if lvl < 1 || lvl > 5 {
			return FieldError("skills", "skill %q: level must be 1-5", name)
		}
	}
	return nil
}

// Team groups agents. A private team's tickets are visible only to its members
// and to supervisors and admins.
type Team struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"-"`
	Name      string    `json:"name"`
	Private   bool      `json:"private"`
	MemberIDs []int64   `json:"member_ids"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks the team's fields.
func (t *Team) Validate() error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" || len(t.Name) > 100 {
		return FieldError("name", "must be 1-100 characters")
	}
	return nil
}

// Actor is who performs an action: a signed-in agent or an API token. Stores
// record it in the audit log and use it to scope what is visible.
type Actor struct {
	AccountID int64
	AgentID   int64 // 0 for API tokens
	TokenID   int64 // 0 for signed-in agents
	Role      Role
	TeamIDs   []int64
}

// IsAgent reports whether the actor is a signed-in user (not a token).
func (a Actor) IsAgent() bool { return a.AgentID != 0 }

// AgentStore keeps agents and teams.
type AgentStore interface {
	CreateAgent(ctx context.Context, accountID int64, a *Agent, passwordHash string) error
	Agent(ctx context.Context, accountID, id int64) (*Agent, error)
	Agents(ctx context.Context, accountID int64, p Page) ([]Agent, string, error)
	UpdateAgent(ctx context.Context, accountID int64, a *Agent) error
	CreateTeam(ctx context.Context, accountID int64, t *Team) error
	Team(ctx context.Context, accountID, id int64) (*Team, error)
	Teams(ctx context.Context, accountID int64) ([]Team, error)
	UpdateTeam(ctx context.Context, accountID int64, t *Team) error
}
