package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Credentials are what a login needs to check a password.
type Credentials struct {
	AgentID      int64
	AccountID    int64
	PasswordHash string
	Active       bool
}

// CredentialsByEmail finds an agent by login email. Logins name no account,
// so an email must be unique across accounts for password login; the first
// active match wins.
func (s *Store) CredentialsByEmail(ctx context.Context, email string) (*Credentials, error) {
	var c Credentials
	err := s.db.QueryRow(ctx, `SELECT id, account_id, password_hash, active FROM agents
		WHERE email = lower($1) ORDER BY active DESC, id LIMIT 1`, email).
		Scan(&c.AgentID, &c.AccountID, &c.PasswordHash, &c.Active)
	if err != nil {
		return nil, translate(err, "agent")
	}
	return &c, nil
}

// SetPassword replaces an agent's password hash.
func (s *Store) SetPassword(ctx context.Context, accountID, agentID int64, hash string) error {
	return setPassword(ctx, s.db, accountID, agentID, hash)
}

// SetPasswordTx is SetPassword inside the caller's transaction.
func SetPasswordTx(ctx context.Context, tx pgx.Tx, accountID, agentID int64, hash string) error {
	return setPassword(ctx, tx, accountID, agentID, hash)
}

func setPassword(ctx context.Context, q querier, accountID, agentID int64, hash string) error {
	tag, err := q.Exec(ctx, `UPDATE agents SET password_hash = $3 WHERE account_id = $1 AND id = $2`, accountID, agentID, hash)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return agentdesk.Errorf(agentdesk.NotFound, "agent not found")
	}
	return nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateSession stores a session for a random token the caller generated;
// only its hash is kept.
func (s *Store) CreateSession(ctx context.Context, accountID, agentID int64, token string, expires time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (token_hash, account_id, agent_id, expires_at) VALUES ($1, $2, $3, $4)`,
		hashToken(token), accountID, agentID, expires)
	return err
}

// DeleteSession ends a session (logout).
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.db.Exec(ctx, deleteSession, hashToken(token))
	return err
}

// DeleteSessionTx is DeleteSession inside the caller's transaction.
func DeleteSessionTx(ctx context.Context, tx pgx.Tx, token string) error {
	_, err := tx.Exec(ctx, deleteSession, hashToken(token))
	return err
}

const deleteSession = `DELETE FROM sessions WHERE token_hash = $1`

// PruneSessions deletes expired sessions.
func (s *Store) PruneSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, now)
	return tag.RowsAffected(), err
}

const actorColumns = `a.account_id, a.id, a.role,
	coalesce((SELECT array_agg(team_id ORDER BY team_id) FROM team_members m WHERE m.agent_id = a.id), '{}')`

// SessionActor returns who holds a live session token.
func (s *Store) SessionActor(ctx context.Context, token string, now time.Time) (agentdesk.Actor, error) {
	a, _, err := s.Session(ctx, token, now)
	return a, err
}

// Session returns who holds a live session token and when it expires.
func (s *Store) Session(ctx context.Context, token string, now time.Time) (agentdesk.Actor, time.Time, error) {
	var a agentdesk.Actor
	var expires time.Time
	err := s.db.QueryRow(ctx, `SELECT `+actorColumns+`, s.expires_at FROM sessions s JOIN agents a ON a.id = s.agent_id
		WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.active`, hashToken(token), now).
		Scan(&a.AccountID, &a.AgentID, &a.Role, &a.TeamIDs, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, time.Time{}, agentdesk.Errorf(agentdesk.Unauthenticated, "session expired or signed out")
	}
	return a, expires, err
}

// APIToken is an integration's credential. The secret is shown once, at
// creation; only its hash is stored.
type APIToken struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	Role       agentdesk.Role `json:"role"`
	Scopes     []string       `json:"scopes"`
	CreatedAt  time.Time      `json:"created_at"`
	LastUsedAt *time.Time     `json:"last_used_at"`
	RevokedAt  *time.Time     `json:"revoked_at"`
}

// CreateAPIToken stores a token whose secret the caller generated.
func (s *Store) CreateAPIToken(ctx context.Context, accountID int64, t *APIToken, secret string) error {
	err := s.db.QueryRow(ctx, `INSERT INTO api_tokens (account_id, name, role, scopes, token_hash)
		VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at`,
		accountID, t.Name, t.Role, t.Scopes, hashToken(secret)).Scan(&t.ID, &t.CreatedAt)
	return translate(err, "API token")
}

// APITokens lists an account's tokens.
func (s *Store) APITokens(ctx context.Context, accountID int64) ([]APIToken, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, role, scopes, created_at, last_used_at, revoked_at
		FROM api_tokens WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) {
		var t APIToken
		err := r.Scan(&t.ID, &t.Name, &t.Role, &t.Scopes, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
		return t, err
	})
}

// RevokeAPIToken revokes a token; it stops working at once.
func (s *Store) RevokeAPIToken(ctx context.Context, accountID, id int64) error {
	return InTx(ctx, s.db, func(tx pgx.Tx) error { return RevokeAPITokenTx(ctx, tx, accountID, id) })
}

// RevokeAPITokenTx is RevokeAPIToken inside the caller's transaction (the
// websockets the token opened are told in the same one).
func RevokeAPITokenTx(ctx context.Context, tx pgx.Tx, accountID, id int64) error {
	tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE account_id = $1 AND id = $2`, accountID, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return agentdesk.Errorf(agentdesk.NotFound, "API token not found")
	}
	return nil
}

// TokenActorByID returns who a live (not revoked) token speaks for, by its
// id: an open websocket's re-check. Unauthenticated once it is revoked.
func (s *Store) TokenActorByID(ctx context.Context, accountID, id int64) (agentdesk.Actor, error) {
	a := agentdesk.Actor{AccountID: accountID, TokenID: id}
	err := s.db.QueryRow(ctx, `SELECT role FROM api_tokens WHERE account_id = $1 AND id = $2 AND revoked_at IS NULL`, accountID, id).Scan(&a.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, agentdesk.Errorf(agentdesk.Unauthenticated, "API token revoked")
	}
	return a, err
}

// TokenActor returns who a bearer token speaks for, and its scopes.
func (s *Store) TokenActor(ctx context.Context, secret string) (agentdesk.Actor, []string, error) {
	var a agentdesk.Actor
	var scopes []string
	// last_used_at is written at most once a minute: a write on every
	// request would cost each API call a WAL flush and serialise an
	// integration's concurrent calls on the token's row lock.
	err := s.db.QueryRow(ctx, `WITH t AS (
			SELECT id, account_id, role, scopes, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL),
		touch AS (
			UPDATE api_tokens a SET last_used_at = now() FROM t
			WHERE a.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))
		SELECT account_id, id, role, scopes FROM t`, hashToken(secret)).Scan(&a.AccountID, &a.TokenID, &a.Role, &scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, nil, agentdesk.Errorf(agentdesk.Unauthenticated, "invalid or revoked API token")
	}
	return a, scopes, err
}

// CreateAccount creates a tenant.
func (s *Store) CreateAccount(ctx context.Context, name string) (*agentdesk.Account, error) {
	a := &agentdesk.Account{Name: name}
	err := s.db.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ($1) RETURNING id, created_at`, name).Scan(&a.ID, &a.CreatedAt)
	return a, err
}

// OrderWebhookSecret returns the account's shop-webhook signing secret.
func (s *Store) OrderWebhookSecret(ctx context.Context, accountID int64) (string, error) {
	var secret string
	err := s.db.QueryRow(ctx, `SELECT order_webhook_secret FROM accounts WHERE id = $1`, accountID).Scan(&secret)
	return secret, translate(err, "account")
}
