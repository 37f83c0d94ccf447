package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Uploads: files on messages (migration 005). The bytes live in email_blobs,
// once per account and SHA-256; an uploads row gives them a name and type
// and, once linked, a message. Email attachments get their rows from a
// trigger, so they are listed and downloaded like any upload.

// Upload is an uploads row as the web layer authorises it.
type Upload struct {
	agentdesk.Attachment
	AccountID int64
	SHA256    [32]byte
	By        agentdesk.Uploader
	MessageID *int64 // nil while unlinked
	TicketID  int64  // the message's ticket, 0 while unlinked
	Kind      agentdesk.MessageKind
	Direction agentdesk.Direction
}

// NewUpload is a file to store.
type NewUpload struct {
	By          agentdesk.Uploader
	Filename    string // cleaned by the caller (agentdesk.CleanFilename)
	ContentType string
	Data        []byte
}

// BlobFiles keeps large files outside the database: a file of at least
// Min bytes is written under Dir (by account and SHA-256) and its blob row
// holds the path instead of the bytes. The zero value keeps every file in
// the database.
type BlobFiles struct {
	Dir string
	Min int64
}

// write stores data under the directory unless it is there already; the
// temporary file and rename keep a half-written file from ever having the
// final name.
func (b BlobFiles) write(accountID int64, sum [32]byte, data []byte) (string, error) {
	h := hex.EncodeToString(sum[:])
	dir := filepath.Join(b.Dir, strconv.FormatInt(accountID, 10), h[:2])
	path := filepath.Join(dir, h)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	// Directories made here must reach the disk too, or a crash could lose
	// the file's whole path while its row has committed.
	var made []string
	for d := dir; d != b.Dir && d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, filepath.Dir(d))
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, h+".tmp*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	// The rename is durable only once the directory is: synced before the
	// row that names the file commits.
	for _, d := range append([]string{dir}, made...) {
		if err := syncDir(d); err != nil {
			return "", fmt.Errorf("sync %s: %w", d, err)
		}
	}
	return path, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CreateUpload stores a file: its bytes once per account (a file uploaded
// again reuses the blob), in the database or, when files says so, in a
// file; and a new unlinked upload row.
func (s *Store) CreateUpload(ctx context.Context, accountID int64, u NewUpload, files BlobFiles) (*Upload, error) {
	sum := sha256.Sum256(u.Data)
	out := &Upload{SHA256: sum, By: u.By, AccountID: accountID}
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		// Look first so a file we have is not sent to the database again.
		// The key-share lock keeps the cleanup from deleting it meanwhile
		// (uploads_cleanup.go), and waits out a cleanup deleting it now.
		var have bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM email_blobs WHERE account_id = $1 AND sha256 = $2 FOR KEY SHARE)`, accountID, sum[:]).Scan(&have); err != nil {
			return err
		}
		if !have {
			data, path := u.Data, (*string)(nil)
			if files.Dir != "" && int64(len(u.Data)) >= files.Min {
				// Written before the row: a row never names a missing file
				// (a file whose row rolls back is reused by the next upload).
				p, err := files.write(accountID, sum, u.Data)
				if err != nil {
					return fmt.Errorf("write blob file: %w", err)
				}
				data, path = nil, &p
			}
			if _, err := tx.Exec(ctx, `INSERT INTO email_blobs (account_id, sha256, size, bytes, path) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
				accountID, sum[:], len(u.Data), data, path); err != nil {
				return fmt.Errorf("store blob: %w", err)
			}
		}
		return tx.QueryRow(ctx, `
INSERT INTO uploads (account_id, sha256, filename, content_type, size, uploaded_by_agent, uploaded_by_token, uploaded_by_visitor)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			accountID, sum[:], u.Filename, u.ContentType, len(u.Data), nullID(u.By.AgentID), nullID(u.By.TokenID), nullText(u.By.VisitorID)).Scan(&out.ID)
	})
	if err != nil {
		return nil, translate(err, "upload")
	}
	out.Filename, out.ContentType, out.Size = u.Filename, u.ContentType, int64(len(u.Data))
	out.Attachment.SHA256 = hex.EncodeToString(sum[:])
	out.URL = agentdesk.AttachmentURL(out.ID)
	return out, nil
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UploadByID returns an upload with what authorising it needs: its
// uploader and, when linked, its message's ticket, kind and direction.
// Visibility is the caller's to decide; NotFound when there is no such id
// in the account.
func (s *Store) UploadByID(ctx context.Context, accountID, id int64) (*Upload, error) {
	u := &Upload{AccountID: accountID}
	var sum []byte
	var agent, token *int64
	var visitor *string
	var ticket *int64
	var kind, dir *string
	err := s.db.QueryRow(ctx, `
SELECT u.id, u.filename, u.content_type, u.size, u.sha256, u.uploaded_by_agent, u.uploaded_by_token, u.uploaded_by_visitor,
       u.message_id, m.ticket_id, m.kind, m.direction
FROM uploads u LEFT JOIN messages m ON m.account_id = u.account_id AND m.id = u.message_id
WHERE u.account_id = $1 AND u.id = $2`, accountID, id).
		Scan(&u.ID, &u.Filename, &u.ContentType, &u.Size, &sum, &agent, &token, &visitor, &u.MessageID, &ticket, &kind, &dir)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "attachment %d not found", id)
	}
	if err != nil {
		return nil, err
	}
	copy(u.SHA256[:], sum)
	u.Filename = shownName(u.Filename)
	u.Attachment.SHA256 = hex.EncodeToString(sum)
	u.URL = agentdesk.AttachmentURL(u.ID)
	if agent != nil {
		u.By.AgentID = *agent
	}
	if token != nil {
		u.By.TokenID = *token
	}
	if visitor != nil {
		u.By.VisitorID = *visitor
	}
	if ticket != nil {
		u.TicketID, u.Kind, u.Direction = *ticket, agentdesk.MessageKind(*kind), agentdesk.Direction(*dir)
	}
	return u, nil
}

// BlobBytes reads a stored file's bytes (from the row, or from the file its
// path names for blobs kept outside the database).
func (s *Store) BlobBytes(ctx context.Context, accountID int64, sum [32]byte) ([]byte, error) {
	var data []byte
	var path *string
	err := s.db.QueryRow(ctx, `SELECT bytes, path FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, accountID, sum[:]).Scan(&data, &path)
	if err != nil {
		return nil, translate(err, "file")
	}
	if data == nil && path != nil {
		if data, err = os.ReadFile(*path); err != nil {
			return nil, fmt.Errorf("read blob file: %w", err)
		}
	}
	return data, nil
}

// Blob is a stored file opened for reading: from its file when it is kept
// in one (the open *os.File), else from the row's bytes — a large row in
// pieces of blobChunk bytes, read as they are needed. Close it.
type Blob struct {
	io.ReadSeeker
	Size int64
	File *os.File // set when the blob is a file under the blob directory
}

// Close closes the blob's file, if any.
func (b *Blob) Close() error {
	if b.File != nil {
		return b.File.Close()
	}
	return nil
}

// blobChunk is how much of a blob in the database one read fetches: a
// download holds about this much of it in memory, not the whole file.
const blobChunk = 1 << 20

// OpenBlob opens a stored file's bytes for serving without holding the
// whole file in memory: a file under the blob directory is opened, a large
// row is read blobChunk bytes at a time (substring of the bytea, which
// PostgreSQL takes from the TOAST chunks it needs), a small one at once.
// ctx bounds the reads.
func (s *Store) OpenBlob(ctx context.Context, accountID int64, sum [32]byte) (*Blob, error) {
	var data []byte
	var size *int64
	var path *string
	err := s.db.QueryRow(ctx, `
SELECT path, octet_length(bytes), CASE WHEN octet_length(bytes) <= $3 THEN bytes END
FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, accountID, sum[:], blobChunk).Scan(&path, &size, &data)
	if err != nil {
		return nil, translate(err, "file")
	}
	if size != nil && data == nil {
		r := &rowBlob{ctx: ctx, db: s.db, accountID: accountID, sum: sum, size: *size}
		return &Blob{ReadSeeker: r, Size: *size}, nil
	}
	if data != nil || path == nil {
		return &Blob{ReadSeeker: bytes.NewReader(data), Size: int64(len(data))}, nil
	}
	f, err := os.Open(*path)
	if err != nil {
		return nil, fmt.Errorf("open blob file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob file: %w", err)
	}
	return &Blob{ReadSeeker: f, Size: st.Size(), File: f}, nil
}

// rowBlob reads a blob's row in pieces. A blob is never changed (its key
// is its SHA-256); one deleted meanwhile (the cleanup, once nothing
// references it) ends the read with an error.
type rowBlob struct {
	ctx       context.Context
	db        querier
	accountID int64
	sum       [32]byte
	size, off int64
	buf       []byte // the piece at bufOff, reused
	bufOff    int64
}

func (b *rowBlob) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if b.off < b.bufOff || b.off >= b.bufOff+int64(len(b.buf)) {
		if err := b.fetch(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.off-b.bufOff:])
	b.off += int64(n)
	return n, nil
}

// fetch reads the piece at off into buf, copied from the driver's buffer
// into the one this reader keeps.
func (b *rowBlob) fetch() error {
	n := min(int64(blobChunk), b.size-b.off)
	rows, err := b.db.Query(b.ctx, `SELECT substring(bytes FROM $3 FOR $4) FROM email_blobs WHERE account_id = $1 AND sha256 = $2`,
		b.accountID, b.sum[:], b.off+1, n)
	if err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read blob: %w", err)
		}
		return errors.New("read blob: deleted while read")
	}
	raw := rows.RawValues()[0]
	if int64(len(raw)) != n {
		return fmt.Errorf("read blob: %d bytes at %d, want %d", len(raw), b.off, n)
	}
	b.buf = append(b.buf[:0], raw...)
	b.bufOff = b.off
	rows.Close()
	return rows.Err()
}

func (b *rowBlob) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	b.off = offset
	return offset, nil
}

// ChatVisitorOf reports whether visitor started the chat of ticketID (the
// chats row): a visitor downloads only files of its own chats.
func ChatVisitorOf(ctx context.Context, q querier, accountID, ticketID int64, visitor string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chats WHERE account_id = $1 AND ticket_id = $2 AND visitor_id = $3)`, accountID, ticketID, visitor).Scan(&ok)
	return ok, err
}

type pendingAttachmentsKey struct{}

type pendingAttachments struct {
	ids  []int64
	by   agentdesk.Uploader
	used bool // linked to a message already: the next one takes none
}

// WithAttachments makes the next message AddMessageTx stores under ctx link
// the uploads ids of by, for channel adapters that build the message
// themselves (the email sender composes and stores its reply in its own
// transaction): the files are linked in that transaction, or not at all.
func WithAttachments(ctx context.Context, ids []int64, by agentdesk.Uploader) context.Context {
	if len(ids) == 0 {
		return ctx
	}
	return context.WithValue(ctx, pendingAttachmentsKey{}, &pendingAttachments{ids: ids, by: by})
}

// linkAttachments links the uploads m asks for (m.AttachmentIDs, or those
// of WithAttachments) to m, just stored in tx, and fills m.Attachments.
// Every id must be an upload of the writer's that no message holds yet;
// otherwise the whole message fails (422 on attachment_ids).
func linkAttachments(ctx context.Context, tx pgx.Tx, actor agentdesk.Actor, m *agentdesk.Message) error {
	ids, by := m.AttachmentIDs, m.AttachBy
	if len(ids) == 0 {
		p, _ := ctx.Value(pendingAttachmentsKey{}).(*pendingAttachments)
		if p == nil || p.used {
			return nil
		}
		ids, by, p.used = p.ids, p.by, true
	}
	if len(ids) == 0 {
		return nil
	}
	if by.IsZero() {
		by = agentdesk.UploaderOf(actor)
	}
	if by.IsZero() {
		return agentdesk.FieldError("attachment_ids", "only files you uploaded can be attached")
	}
	if len(ids) > agentdesk.MaxMessageAttachments {
		return agentdesk.FieldError("attachment_ids", "at most %d files per message", agentdesk.MaxMessageAttachments)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ids) {
		return agentdesk.FieldError("attachment_ids", "lists a file twice")
	}
	// The row locks make a second message racing for the same file wait and
	// then find it taken.
	rows, err := tx.Query(ctx, `
UPDATE uploads SET message_id = $3
WHERE account_id = $1 AND id = ANY($2) AND message_id IS NULL
  AND uploaded_by_agent IS NOT DISTINCT FROM $4 AND uploaded_by_token IS NOT DISTINCT FROM $5
  AND uploaded_by_visitor IS NOT DISTINCT FROM $6
RETURNING id, filename, content_type, size`,
		actor.AccountID, ids, m.ID, nullID(by.AgentID), nullID(by.TokenID), nullText(by.VisitorID))
	if err != nil {
		return fmt.Errorf("link attachments: %w", err)
	}
	linked, err := pgx.CollectRows(rows, scanAttachment)
	if err != nil {
		return fmt.Errorf("link attachments: %w", err)
	}
	if len(linked) != len(ids) {
		return agentdesk.FieldError("attachment_ids", "every id must be a file you uploaded that is not on another message yet")
	}
	// In the order the writer listed them.
	slices.SortFunc(linked, func(a, b agentdesk.Attachment) int { return slices.Index(ids, a.ID) - slices.Index(ids, b.ID) })
	m.Attachments = linked
	return nil
}

func scanAttachment(r pgx.CollectableRow) (agentdesk.Attachment, error) {
	var a agentdesk.Attachment
	err := r.Scan(&a.ID, &a.Filename, &a.ContentType, &a.Size)
	a.URL, a.Filename = agentdesk.AttachmentURL(a.ID), shownName(a.Filename)
	return a, err
}

// shownName is a file's name as listed: mail may carry files without one.
func shownName(s string) string {
	if s == "" {
		return "attachment"
	}
	return s
}

// FillAttachments sets the Attachments of messages (one query for all).
func FillAttachments(ctx context.Context, q querier, accountID int64, msgs []agentdesk.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]int64, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ID
	}
	byMsg, err := attachmentsOf(ctx, q, accountID, ids)
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Attachments = byMsg[msgs[i].ID]
	}
	return nil
}

// attachmentsOf lists the attachments of messages ids, by message.
func attachmentsOf(ctx context.Context, q querier, accountID int64, ids []int64) (map[int64][]agentdesk.Attachment, error) {
	rows, err := q.Query(ctx, `
SELECT message_id, id, filename, content_type, size FROM uploads
WHERE account_id = $1 AND message_id = ANY($2) ORDER BY message_id, id`, accountID, ids)
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	out := map[int64][]agentdesk.Attachment{}
	var msgID int64
	var a agentdesk.Attachment
	_, err = pgx.ForEachRow(rows, []any{&msgID, &a.ID, &a.Filename, &a.ContentType, &a.Size}, func() error {
		a.URL, a.Filename = agentdesk.AttachmentURL(a.ID), shownName(a.Filename)
		out[msgID] = append(out[msgID], a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	return out, nil
}

// MessageAttachments lists the attachments of the given message ids, by
// message (the chat widget's transcript).
func (s *Store) MessageAttachments(ctx context.Context, accountID int64, ids []int64) (map[int64][]agentdesk.Attachment, error) {
	return attachmentsOf(ctx, s.db, accountID, ids)
}

// UploadFiles returns the files of uploads ids of by that no message holds
// yet, with their bytes, in the order given (the email sender attaches them
// to the mail). A missing id is a 422 on attachment_ids, as when linking.
// Together they may be at most maxTotal bytes (413 on attachment_ids).
func (s *Store) UploadFiles(ctx context.Context, accountID int64, ids []int64, by agentdesk.Uploader, maxTotal int64) ([]Upload, [][]byte, error) {
	if len(ids) > agentdesk.MaxMessageAttachments {
		return nil, nil, agentdesk.FieldError("attachment_ids", "at most %d files per message", agentdesk.MaxMessageAttachments)
	}
	ups := make([]Upload, 0, len(ids))
	for _, id := range ids {
		u, err := s.UploadByID(ctx, accountID, id)
		if agentdesk.IsKind(err, agentdesk.NotFound) || (err == nil && (u.MessageID != nil || u.By != by)) {
			return nil, nil, agentdesk.FieldError("attachment_ids", "every id must be a file you uploaded that is not on another message yet")
		}
		if err != nil {
			return nil, nil, err
		}
		if maxTotal -= u.Size; maxTotal < 0 {
			return nil, nil, &agentdesk.Error{Kind: agentdesk.TooLarge, Field: "attachment_ids", Message: "the files are too large to send together by email"}
		}
		ups = append(ups, *u)
	}
	datas := make([][]byte, 0, len(ids))
	for _, u := range ups {
		data, err := s.BlobBytes(ctx, accountID, u.SHA256)
		if err != nil {
			return nil, nil, err
		}
		datas = append(datas, data)
	}
	return ups, datas, nil
}
