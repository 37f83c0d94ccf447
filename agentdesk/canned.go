package agentdesk

import (
	"context"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// CannedScope says who shares a canned response.
type CannedScope string

const (
	CannedAccount  CannedScope = "account"  // everyone in the account
	CannedTeam     CannedScope = "team"     // the members of one team
	CannedPersonal CannedScope = "personal" // one agent only
)

// Limits of a canned response.
const (
	MaxCannedTitle = 200
	MaxCannedBody  = 10000
)

// CannedResponse is a reply text agents insert into the composer, found by
// its title or typed as "/" + shortcut. Its body may name placeholders
// ({{customer.first_name}}) that are filled in for one ticket when it is
// inserted. At most one of TeamID and AgentID is set: neither means shared
// with the whole account.
type CannedResponse struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"-"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Shortcut  string    `json:"shortcut"`
	TeamID    *int64    `json:"team_id"`
	AgentID   *int64    `json:"agent_id"`
	CreatedBy *int64    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Scope is who shares c.
func (c *CannedResponse) Scope() CannedScope {
	switch {
	case c.AgentID != nil:
		return CannedPersonal
	case c.TeamID != nil:
		return CannedTeam
	}
	return CannedAccount
}

var shortcutPattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Validate normalises the title and shortcut (trimmed; the shortcut lower
// case) and checks every field, placeholders included: an unknown
// placeholder is refused when the text is saved, not when an agent inserts it
// in front of a customer.
func (c *CannedResponse) Validate() error {
	c.Title = strings.TrimSpace(c.Title)
	c.Shortcut = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.Shortcut), "/")))
	switch {
	case c.Title == "":
		return FieldError("title", "must not be empty")
	case utf8.RuneCountInString(c.Title) > MaxCannedTitle:
		return FieldError("title", "must be at most %d characters", MaxCannedTitle)
	case strings.TrimSpace(c.Body) == "":
		return FieldError("body", "must not be empty")
	case utf8.RuneCountInString(c.Body) > MaxCannedBody:
		return FieldError("body", "must be at most %d characters", MaxCannedBody)
	case c.Shortcut != "" && !shortcutPattern.MatchString(c.Shortcut):
		return FieldError("shortcut", "must be 1-32 of a-z, 0-9, _ and -")
	case c.TeamID != nil && c.AgentID != nil:
		return FieldError("team_id", "a personal canned response belongs to no team")
	}
	if bad := UnknownPlaceholders(c.Body); len(bad) > 0 {
		return FieldError("body", "unknown placeholder {{%s}}; use %s", bad[0], strings.Join(placeholderList(), ", "))
	}
	return nil
}

// CanChange reports whether a may edit or delete c: its owner a personal
// one, a supervisor or admin a shared one. Seeing c is checked before.
func (c *CannedResponse) CanChange(a Actor) error {
	if c.AgentID != nil {
		if a.AgentID != *c.AgentID {
			return Errorf(Forbidden, "only its owner may change a personal canned response")
		}
		return nil
	}
	if !a.Role.AtLeast(RoleSupervisor) {
		return Errorf(Forbidden, "shared canned responses are changed by supervisors and admins")
	}
	return nil
}

// Placeholders are the names a canned response may use, in {{name}}.
var Placeholders = []string{"customer.name", "customer.first_name", "customer.email", "agent.name", "ticket.id", "ticket.subject"}

func placeholderList() []string {
	out := make([]string, len(Placeholders))
	for i, p := range Placeholders {
		out[i] = "{{" + p + "}}"
	}
	return out
}

var placeholderPattern = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// UnknownPlaceholders lists the placeholders in body that are not known, in
// order of appearance.
func UnknownPlaceholders(body string) []string {
	var bad []string
	for _, m := range placeholderPattern.FindAllStringSubmatch(body, -1) {
		if !knownPlaceholder(m[1]) {
			bad = append(bad, m[1])
		}
	}
	return bad
}

func knownPlaceholder(name string) bool {
	for _, p := range Placeholders {
		if p == name {
			return true
		}
	}
	return false
}

// RenderCanned fills body's placeholders from values (by placeholder name);
// a known placeholder without a value becomes empty, an unknown one is left
// as written. Values are inserted as they are: the result is plain text.
func RenderCanned(body string, values map[string]string) string {
	return placeholderPattern.ReplaceAllStringFunc(body, func(m string) string {
		name := placeholderPattern.FindStringSubmatch(m)[1]
		if !knownPlaceholder(name) {
			return m
		}
		return values[name]
	})
}

// FirstName is the first word of a person's name.
func FirstName(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	return ""
}

// CannedFilter narrows the canned responses listed: Query matches the
// title, the shortcut or the body.
type CannedFilter struct {
	Query string
	Page
}

// CannedStore keeps canned responses. What the actor may see is applied by
// the store: the account's shared ones, their teams' (every team's for
// supervisors and admins) and their own personal ones; one they may not see
// is NotFound. Changes to shared ones are audited.
type CannedStore interface {
	CannedResponses(ctx context.Context, actor Actor, f CannedFilter) ([]CannedResponse, string, error)
	CannedResponse(ctx context.Context, actor Actor, id int64) (*CannedResponse, error)
	CreateCannedResponse(ctx context.Context, actor Actor, c *CannedResponse) error
	UpdateCannedResponse(ctx context.Context, actor Actor, id int64, change func(*CannedResponse) error) (*CannedResponse, error)
	DeleteCannedResponse(ctx context.Context, actor Actor, id int64) error
}
