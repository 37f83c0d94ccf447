package postgres

import (
	"bytes"
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// IdempotencyClaim is the outcome of claiming an Idempotency-Key: either the
// caller now owns the key and runs the request, or a stored answer replays.
type IdempotencyClaim struct {
	Replay   bool
	Status   int
	Response []byte
}

// ClaimIdempotencyKey claims key for a request with the given hash. A key
// already answered for the same request replays; one used for a different
// request, or still in flight, is a conflict.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, accountID int64, principal, key string, requestHash []byte) (IdempotencyClaim, error) {
	tag, err := s.db.Exec(ctx, `INSERT INTO idempotency_keys (account_id, principal, key, request_hash)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, accountID, principal, key, requestHash)
	if err != nil {
		return IdempotencyClaim{}, err
	}
	if tag.RowsAffected() == 1 {
		return IdempotencyClaim{}, nil
	}
	var hash, resp []byte
	var status *int
	err = s.db.QueryRow(ctx, `SELECT request_hash, status, response FROM idempotency_keys
		WHERE account_id = $1 AND principal = $2 AND key = $3`, accountID, principal, key).Scan(&hash, &status, &resp)
	if errors.Is(err, pgx.ErrNoRows) {
		return IdempotencyClaim{}, agentdesk.Errorf(agentdesk.Conflict, "Idempotency-Key was just released; retry")
	}
	if err != nil {
		return IdempotencyClaim{}, err
	}
	if !bytes.Equal(hash, requestHash) {
		return IdempotencyClaim{}, &agentdesk.Error{Kind: agentdesk.Conflict, Field: "Idempotency-Key", Message: "this key was used for a different request"}
	}
	if status == nil {
		return IdempotencyClaim{}, &agentdesk.Error{Kind: agentdesk.Conflict, Field: "Idempotency-Key", Message: "a request with this key is still in progress"}
	}
	return IdempotencyClaim{Replay: true, Status: *status, Response: resp}, nil
}

// CompleteIdempotencyKey stores the answer for replays.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, accountID int64, principal, key string, status int, response []byte) error {
	_, err := s.db.Exec(ctx, `UPDATE idempotency_keys SET status = $4, response = $5
		WHERE account_id = $1 AND principal = $2 AND key = $3`, accountID, principal, key, status, response)
	return err
}

// ReleaseIdempotencyKey forgets a claim whose request failed on our side.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, accountID int64, principal, key string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE account_id = $1 AND principal = $2 AND key = $3 AND status IS NULL`, accountID, principal, key)
	return err
}

// PruneIdempotencyKeys forgets keys older than a day.
func (s *Store) PruneIdempotencyKeys(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'`)
	return err
}
