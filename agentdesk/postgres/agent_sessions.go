package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// EndAgentSessions signs an agent out everywhere except the session whose
// token is keep ("" ends all): what a password reset needs, so whoever knew
// the old password loses access at once.
func (s *Store) EndAgentSessions(ctx context.Context, accountID, agentID int64, keep string) (int64, error) {
	return endAgentSessions(ctx, s.db, accountID, agentID, keep)
}

// EndAgentSessionsTx is EndAgentSessions inside the caller's transaction.
func EndAgentSessionsTx(ctx context.Context, tx pgx.Tx, accountID, agentID int64, keep string) (int64, error) {
	return endAgentSessions(ctx, tx, accountID, agentID, keep)
}

func endAgentSessions(ctx context.Context, q querier, accountID, agentID int64, keep string) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1 AND agent_id = $2 AND token_hash <> $3`,
		accountID, agentID, hashToken(keep))
	if err != nil {
		return 0, fmt.Errorf("end sessions of agent %d: %w", agentID, err)
	}
	return tag.RowsAffected(), nil
}
