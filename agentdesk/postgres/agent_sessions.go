package postgres

import (
	"context"
	"fmt"
)

// EndAgentSessions signs an agent out everywhere except the session whose
// token is keep ("" ends all): what a password reset needs, so whoever knew
// the old password loses access at once.
func (s *Store) EndAgentSessions(ctx context.Context, accountID, agentID int64, keep string) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1 AND agent_id = $2 AND token_hash <> $3`,
		accountID, agentID, hashToken(keep))
	if err != nil {
		return 0, fmt.Errorf("end sessions of agent %d: %w", agentID, err)
	}
	return tag.RowsAffected(), nil
}
