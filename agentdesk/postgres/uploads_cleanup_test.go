package postgres_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// The cleanup deletes uploads nobody sent once they are older than the
// cutoff, and blobs nothing references any more (with their files); it keeps
// everything a message, an email attachment or a raw mail still needs, and
// what is newer than the cutoff.
func TestCleanUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	db := f.store.DB()
	dir := t.TempDir()
	files := postgres.BlobFiles{Dir: dir, Min: 1 << 10}
	by := agentdesk.UploaderOf(f.inside)
	upload := func(name string, data []byte) *postgres.Upload {
		t.Helper()
		u, err := f.store.CreateUpload(ctx, f.acct, postgres.NewUpload{By: by, Filename: name, ContentType: "application/octet-stream", Data: data}, files)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	age := func(d time.Duration, table, where string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, fmt.Sprintf(`UPDATE %s SET created_at = now() - interval '%d seconds' WHERE %s`, table, int(d.Seconds()), where), args...); err != nil {
			t.Fatal(err)
		}
	}
	big := func(b byte) []byte { // kept in a file under dir
		d := make([]byte, 2<<10)
		for i := range d {
			d[i] = b
		}
		return d
	}
	const day = 24 * time.Hour

	abandoned := upload("abandoned.bin", big('a'))          // old, on no message: row, blob and file go
	shared := upload("shared copy.txt", []byte("shared"))   // old, on no message, but its bytes are on a message: row goes, blob stays
	sent := upload("sent.txt", []byte("shared"))            // same bytes, sent
	recent := upload("recent.txt", []byte("just uploaded")) // new, on no message: stays
	sentBig := upload("sent.bin", big('s'))                 // old, sent: stays, file too
	tk := &agentdesk.Ticket{Subject: "Files", CustomerID: f.customer, Channel: agentdesk.ChannelEmail}
	if err := f.store.CreateTicket(ctx, f.inside, tk, &agentdesk.Message{Kind: agentdesk.KindNote, Body: "files", AttachmentIDs: []int64{sent.ID, sentBig.ID}}); err != nil {
		t.Fatal(err)
	}
	// Mail: an attachment (its upload row comes from the trigger) and a raw
	// message, each only in the database.
	var msgID int64
	if err := db.QueryRow(ctx, `SELECT id FROM messages WHERE account_id = $1 AND ticket_id = $2`, f.acct, tk.ID).Scan(&msgID); err != nil {
		t.Fatal(err)
	}
	attSum, rawSum, loneSum, newLoneSum := sha256.Sum256([]byte("mailed")), sha256.Sum256([]byte("raw mail")), sha256.Sum256([]byte("lone")), sha256.Sum256([]byte("new lone"))
	for _, b := range []struct {
		sum  [32]byte
		data string
	}{{attSum, "mailed"}, {rawSum, "raw mail"}, {loneSum, "lone"}, {newLoneSum, "new lone"}} {
		if _, err := db.Exec(ctx, `INSERT INTO email_blobs (account_id, sha256, size, bytes) VALUES ($1, $2, $3, $4)`, f.acct, b.sum[:], len(b.data), []byte(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, `INSERT INTO email_attachments (account_id, message_id, sha256, filename, size) VALUES ($1, $2, $3, 'mailed.txt', 6)`, f.acct, msgID, attSum[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO email_messages (account_id, rfc_message_id, direction, raw_sha256) VALUES ($1, 'bounce@x.test', 'in', $2)`, f.acct, rawSum[:]); err != nil {
		t.Fatal(err)
	}
	age(2*day, "uploads", "id <> $1", recent.ID)
	age(2*day, "email_blobs", "sha256 <> $1", newLoneSum[:])
	age(0, "email_blobs", "sha256 = $1", newLoneSum[:])

	fileOf := func(u *postgres.Upload) string {
		var p *string
		db.QueryRow(ctx, `SELECT path FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, f.acct, u.SHA256[:]).Scan(&p) //nolint:errcheck
		if p == nil {
			t.Fatalf("%s has no file", u.Filename)
		}
		return *p
	}
	abandonedFile, sentFile := fileOf(abandoned), fileOf(sentBig)

	got, err := f.store.CleanUploads(ctx, time.Now().Add(-day))
	if err != nil {
		t.Fatal(err)
	}
	if got != (postgres.UploadCleanup{Uploads: 2, Blobs: 2, Files: 1}) {
		t.Errorf("cleanup removed %+v, want 2 uploads (abandoned, shared copy), 2 blobs (abandoned, lone), 1 file", got)
	}
	for _, c := range []struct {
		name string
		id   int64
		want bool
	}{{"abandoned", abandoned.ID, false}, {"shared copy", shared.ID, false}, {"sent", sent.ID, true}, {"recent", recent.ID, true}, {"sent big", sentBig.ID, true}} {
		if _, err := f.store.UploadByID(ctx, f.acct, c.id); (err == nil) != c.want {
			t.Errorf("upload %s kept = %v, want %v", c.name, err == nil, c.want)
		}
	}
	for _, c := range []struct {
		name string
		sum  [32]byte
		want bool
	}{{"abandoned", abandoned.SHA256, false}, {"shared", sent.SHA256, true}, {"recent", recent.SHA256, true}, {"sent big", sentBig.SHA256, true},
		{"mailed", attSum, true}, {"raw mail", rawSum, true}, {"lone", loneSum, false}, {"new lone", newLoneSum, true}} {
		if _, err := f.store.BlobBytes(ctx, f.acct, c.sum); (err == nil) != c.want {
			t.Errorf("blob %s kept = %v (%v), want %v", c.name, err == nil, err, c.want)
		}
	}
	if _, err := os.Stat(abandonedFile); !os.IsNotExist(err) {
		t.Errorf("abandoned file: %v", err)
	}
	if _, err := os.Stat(sentFile); err != nil {
		t.Errorf("sent file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*", "*.deleting")); len(left) > 0 {
		t.Errorf("files left aside: %v", left)
	}
	// The same bytes uploaded again are stored again, file included.
	again := upload("again.bin", big('a'))
	if b, err := f.store.BlobBytes(ctx, f.acct, again.SHA256); err != nil || len(b) != 2<<10 {
		t.Errorf("uploaded again: %d bytes, %v", len(b), err)
	}
	// Nothing left to do.
	if got, err := f.store.CleanUploads(ctx, time.Now().Add(-day)); err != nil || got != (postgres.UploadCleanup{}) {
		t.Errorf("second pass %+v %v", got, err)
	}
}

// Cleaners on several processes at once share the work: every row is
// deleted once, none fails, and what a message holds stays.
func TestCleanUploadsConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	db := f.store.DB()
	const n = 1200 // more than two batches
	if _, err := db.Exec(ctx, `
WITH b AS (
	INSERT INTO email_blobs (account_id, sha256, size, bytes, created_at)
	SELECT $1, sha256(int8send(i)), 8, int8send(i), now() - interval '2 days' FROM generate_series(1, $2) i
	RETURNING sha256)
INSERT INTO uploads (account_id, sha256, filename, content_type, size, uploaded_by_agent, created_at)
SELECT $1, sha256, 'f.bin', 'application/octet-stream', 8, $3, now() - interval '2 days' FROM b`, f.acct, n, f.inside.AgentID); err != nil {
		t.Fatal(err)
	}
	keep, err := f.store.CreateUpload(ctx, f.acct, postgres.NewUpload{By: agentdesk.UploaderOf(f.inside), Filename: "keep.txt", ContentType: "text/plain", Data: []byte("keep")}, postgres.BlobFiles{})
	if err != nil {
		t.Fatal(err)
	}
	tk := &agentdesk.Ticket{Subject: "Keep", CustomerID: f.customer, Channel: agentdesk.ChannelEmail}
	if err := f.store.CreateTicket(ctx, f.inside, tk, &agentdesk.Message{Kind: agentdesk.KindNote, Body: "keep", AttachmentIDs: []int64{keep.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE uploads SET created_at = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	const cleaners = 3
	var wg sync.WaitGroup
	results := make([]postgres.UploadCleanup, cleaners)
	errs := make([]error, cleaners)
	for i := range cleaners {
		wg.Go(func() { results[i], errs[i] = f.store.CleanUploads(ctx, time.Now().Add(-24*time.Hour)) })
	}
	wg.Wait()
	var total postgres.UploadCleanup
	for i := range cleaners {
		if errs[i] != nil {
			t.Errorf("cleaner %d: %v", i, errs[i])
		}
		total.Uploads += results[i].Uploads
		total.Blobs += results[i].Blobs
	}
	// A cleaner that found every row locked by the others stops early; a
	// last pass finishes what they skipped.
	last, err := f.store.CleanUploads(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	total.Uploads += last.Uploads
	total.Blobs += last.Blobs
	if total.Uploads != n || total.Blobs != n {
		t.Errorf("deleted %d uploads and %d blobs in all, want %d each", total.Uploads, total.Blobs, n)
	}
	var uploads, blobs int
	db.QueryRow(ctx, `SELECT (SELECT count(*) FROM uploads), (SELECT count(*) FROM email_blobs)`).Scan(&uploads, &blobs) //nolint:errcheck
	if uploads != 1 || blobs != 1 {
		t.Errorf("left %d uploads and %d blobs, want the sent file's", uploads, blobs)
	}
	if _, err := f.store.UploadByID(ctx, f.acct, keep.ID); err != nil {
		t.Errorf("the sent file: %v", err)
	}
}

// What a writer holds is skipped, not waited for: a file a message is
// linking right now stays, and a blob an upload is reusing right now
// stays with the new upload on it.
func TestCleanUploadsSkipsWhatWritersHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	db := f.store.DB()
	by := agentdesk.UploaderOf(f.inside)
	mk := func(name, data string) *postgres.Upload {
		t.Helper()
		u, err := f.store.CreateUpload(ctx, f.acct, postgres.NewUpload{By: by, Filename: name, ContentType: "text/plain", Data: []byte(data)}, postgres.BlobFiles{})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	linking, reused := mk("linking.txt", "linking"), mk("reused.txt", "reused")
	if _, err := db.Exec(ctx, `UPDATE uploads SET created_at = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE email_blobs SET created_at = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	// The reused file's upload is gone already; its blob is waiting for
	// the cleanup when a new upload of the same bytes starts.
	if _, err := db.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, reused.ID); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	// As linkAttachments and CreateUpload lock them.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM uploads WHERE account_id = $1 AND id = $2 FOR UPDATE`, f.acct, linking.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT EXISTS (SELECT 1 FROM email_blobs WHERE account_id = $1 AND sha256 = $2 FOR KEY SHARE)`, f.acct, reused.SHA256[:]); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.CleanUploads(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || got != (postgres.UploadCleanup{}) {
		t.Fatalf("cleanup while writers hold the rows removed %+v (%v)", got, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO uploads (account_id, sha256, filename, content_type, size) VALUES ($1, $2, 'again.txt', 'text/plain', 6)`, f.acct, reused.SHA256[:]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.BlobBytes(ctx, f.acct, reused.SHA256); err != nil {
		t.Errorf("the reused blob: %v", err)
	}
	// Released, the unsent file goes on the next pass.
	if got, err := f.store.CleanUploads(ctx, time.Now().Add(-24*time.Hour)); err != nil || got != (postgres.UploadCleanup{Uploads: 1, Blobs: 1}) {
		t.Errorf("next pass removed %+v (%v), want the linking file and its blob", got, err)
	}
}
