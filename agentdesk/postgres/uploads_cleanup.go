package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Cleanup of files nobody sent: an upload is linked to a message in the
// message's transaction, so one still unlinked long after its upload was
// abandoned (the composer closed, the chat left). Once no upload, email
// attachment or raw mail names a blob, its bytes (and its file under the
// blob directory) go too.
//
// Several serve processes may clean at once: every batch locks its rows
// with FOR UPDATE SKIP LOCKED, so two cleaners take different rows, and a
// row that a message is linking, or that an upload or a mail is starting to
// use, is locked by that writer and skipped. The blob directory must be the
// one every process sees (--blob-dir), as for uploads.

// UploadCleanup is what one cleanup pass removed.
type UploadCleanup struct {
	Uploads int // unlinked uploads older than the cutoff
	Blobs   int // blobs nothing references any more
	Files   int // their files under the blob directory
}

// cleanupBatch bounds the rows one transaction locks and deletes.
const cleanupBatch = 500

// CleanUploads deletes the uploads that are on no message and were made
// before cutoff, then the blobs made before cutoff that no upload, email
// attachment or raw mail references, with their files. It works in
// batches, each its own transaction, until nothing is left to do.
func (s *Store) CleanUploads(ctx context.Context, cutoff time.Time) (UploadCleanup, error) {
	var out UploadCleanup
	for {
		n, err := s.cleanUploadBatch(ctx, cutoff)
		out.Uploads += n
		if err != nil {
			return out, err
		}
		if n < cleanupBatch {
			break
		}
	}
	for {
		found, blobs, files, err := s.cleanBlobBatch(ctx, cutoff)
		out.Blobs += blobs
		out.Files += files
		if err != nil {
			return out, err
		}
		// A batch whose every candidate turned out referenced deletes
		// nothing: stop rather than find the same rows again.
		if found < cleanupBatch || blobs == 0 {
			break
		}
	}
	return out, nil
}

func (s *Store) cleanUploadBatch(ctx context.Context, cutoff time.Time) (int, error) {
	// Email attachments' rows come from a trigger with their message set;
	// the email_attachment_id test only keeps this query away from them.
	tag, err := s.db.Exec(ctx, `
DELETE FROM uploads WHERE id IN (
	SELECT id FROM uploads
	WHERE message_id IS NULL AND email_attachment_id IS NULL AND created_at < $1
	ORDER BY created_at LIMIT $2
	FOR UPDATE SKIP LOCKED)`, cutoff, cleanupBatch)
	if err != nil {
		return 0, fmt.Errorf("delete unlinked uploads: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// cleanBlobBatch deletes up to cleanupBatch unreferenced blobs in one
// transaction. A blob's file is renamed aside before the commit and removed
// after it (renamed back if the commit fails), so a row never names a
// missing file and a file written again under the same name by a new
// upload after the commit is never the one removed.
func (s *Store) cleanBlobBatch(ctx context.Context, cutoff time.Time) (found, blobs, files int, err error) {
	type blob struct {
		account int64
		sum     []byte
		path    *string
	}
	var aside []string // files renamed aside, removed after the commit
	err = InTx(ctx, s.db, func(tx pgx.Tx) error {
		aside = aside[:0]
		blobs = 0
		rows, err := tx.Query(ctx, `
SELECT b.account_id, b.sha256, b.path FROM email_blobs b
WHERE b.created_at < $1
  AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.account_id = b.account_id AND u.sha256 = b.sha256)
  AND NOT EXISTS (SELECT 1 FROM email_attachments a WHERE a.account_id = b.account_id AND a.sha256 = b.sha256)
  AND NOT EXISTS (SELECT 1 FROM email_messages e WHERE e.account_id = b.account_id AND e.raw_sha256 = b.sha256)
LIMIT $2
FOR UPDATE OF b SKIP LOCKED`, cutoff, cleanupBatch)
		if err != nil {
			return fmt.Errorf("find unreferenced blobs: %w", err)
		}
		var cands []blob
		var b blob
		if _, err := pgx.ForEachRow(rows, []any{&b.account, &b.sum, &b.path}, func() error {
			cands = append(cands, b)
			return nil
		}); err != nil {
			return fmt.Errorf("find unreferenced blobs: %w", err)
		}
		found = len(cands)
		for _, c := range cands {
			// A reference committed after this statement's snapshot fails
			// the delete's foreign key check: keep that blob, go on.
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			_, err = sp.Exec(ctx, `DELETE FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, c.account, c.sum)
			var pg *pgconn.PgError
			if errors.As(err, &pg) && pg.Code == "23503" {
				if err := sp.Rollback(ctx); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("delete blob: %w", err)
			}
			if err := sp.Commit(ctx); err != nil {
				return err
			}
			blobs++
			if c.path != nil {
				// Gone already (a failed earlier pass): nothing to keep.
				if err := os.Rename(*c.path, *c.path+".deleting"); err == nil {
					aside = append(aside, *c.path)
				} else if !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("set blob file aside: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		for _, p := range aside {
			os.Rename(p+".deleting", p) //nolint:errcheck // best effort: the row is still there
		}
		return found, 0, 0, err
	}
	for _, p := range aside {
		if err := os.Remove(p + ".deleting"); err == nil || errors.Is(err, os.ErrNotExist) {
			files++
		}
	}
	return found, blobs, files, nil
}
