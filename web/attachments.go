package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func init() { registerAPI(mountAttachments) }

// Attachments (docs: web/PROTOCOL.md, "Attachments"): a file is uploaded
// first (POST /attachments → an id), then sent by listing its id in a
// message's attachment_ids; the message's writer links it in the message's
// transaction. The bytes are stored once per account by SHA-256
// (email_blobs); files of email are listed and downloaded the same way.

// Default upload limits.
const (
	DefaultAttachmentMaxBytes        = 25 << 20
	DefaultVisitorAttachmentMaxBytes = 10 << 20
	// multipartSlack is what a multipart envelope around one file may add
	// (boundaries, part headers, a filename field).
	multipartSlack = 16 << 10
	// DefaultUploadsInFlight is how many uploads one agent (or API token)
	// and one chat visitor may have in progress at once on a process.
	DefaultUploadsInFlight = 4
)

// Memory: an upload is held in memory whole while it is stored — the file
// (at most --attachment-max-bytes, 25 MB by default; 10 MB for a visitor),
// read into one buffer sized by the Content-Length. With an
// Idempotency-Key the whole body is read first (its fingerprint is needed
// before the upload runs) and the file is then a slice of it, not a second
// copy. A file going into a bytea row (no --blob-dir, or smaller than
// --blob-file-min-bytes) costs about twice its size again in the database
// driver while it is sent. The in-flight limit (DefaultUploadsInFlight per
// agent, token or visitor, per process) bounds what one client can pile up;
// the total over every client is bounded only by the number of clients
// (BENCHMARKS.md, "Attachments", has the figures). Downloads never hold a
// whole file: one under --blob-dir is served from the open file (ranges
// included), one in the database is read 1 MB at a time.

// uploadConfig is the attachments' settings on this server.
type uploadConfig struct {
	maxBytes        int64 // agents' uploads
	visitorMaxBytes int64 // chat visitors' uploads
	files           postgres.BlobFiles
	perVisitor      *keyedLimiter
	perIP           *keyedLimiter
	inFlight        *inFlight // uploads in progress per uploader
}

// WithAttachmentLimits sets the largest file agents (agentMax) and chat
// visitors (visitorMax) may upload, in bytes; 0 keeps the default (25 MB
// and 10 MB).
func WithAttachmentLimits(agentMax, visitorMax int64) Option {
	return func(s *Server) {
		s.uploads.maxBytes, s.uploads.visitorMaxBytes = agentMax, visitorMax
	}
}

// WithBlobDir keeps uploaded files of at least min bytes in files under dir
// (email_blobs.path) instead of the database; "" keeps them all in the
// database. Every server process must see the same directory. A relative
// dir is made absolute here, against the working directory: the rows name
// the files by path, and a process started elsewhere must find them.
func WithBlobDir(dir string, min int64) Option {
	if dir != "" {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	return func(s *Server) { s.uploads.files = postgres.BlobFiles{Dir: dir, Min: min} }
}

func (c *uploadConfig) defaults() {
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultAttachmentMaxBytes
	}
	if c.visitorMaxBytes <= 0 {
		c.visitorMaxBytes = DefaultVisitorAttachmentMaxBytes
	}
	if c.inFlight == nil {
		c.inFlight = &inFlight{max: DefaultUploadsInFlight, n: map[string]int{}}
	}
	if c.perVisitor == nil {
		c.perVisitor = newKeyedLimiter(20, 10*time.Minute)
		c.perIP = newKeyedLimiter(60, 10*time.Minute)
	}
}

func mountAttachments(s *Server, a *apiRouter) {
	s.uploads.defaults()
	a.route("POST", "/attachments", agentdesk.RoleAgent, "Upload a file to attach to a message (agent+): multipart/form-data with the file in field file (optional field filename); send its id in a message's attachment_ids",
		s.uploadAttachment, doc{Body: uploadForm{}, BodyType: "multipart/form-data", Response: agentdesk.Attachment{}, Status: 201, Idempotent: true, MaxBody: s.uploads.maxBytes + multipartSlack, BodyField: "file",
			Gate: s.agentUploadGate})
	a.route("GET", "/attachments/{id}", agentdesk.RoleAgent, "An attachment's name, type, size and SHA-256 (agent+ who can see its ticket, or its uploader while it is on no message)",
		s.getAttachment, doc{Response: agentdesk.Attachment{}})
	a.route("GET", "/attachments/{id}/content", agentdesk.RoleAgent, "An attachment's bytes (same access as its metadata); ETag is its SHA-256",
		s.attachmentContent, doc{})
}

// uploadForm documents the multipart form of an upload.
type uploadForm struct {
	File     string `json:"file"`               // the file's bytes (a multipart file part)
	Filename string `json:"filename,omitempty"` // the name to keep, if not the part's
}

// inFlight counts uploads in progress by key (an uploader), so one client
// cannot hold many files in memory at once.
type inFlight struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

// acquire takes one of key's places, or reports there is none left; the
// release gives it back (call it once).
func (l *inFlight) acquire(key string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return nil, false
	}
	l.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.n[key]--; l.n[key] <= 0 {
				delete(l.n, key)
			}
		})
	}, true
}

// count is how many uploads of key are in progress.
func (l *inFlight) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[key]
}

func tooManyUploads(w http.ResponseWriter) error {
	w.Header().Set("Retry-After", "5")
	return &agentdesk.Error{Kind: agentdesk.RateLimited, Field: "file",
		Message: fmt.Sprintf("at most %d uploads at once; wait for one to finish", DefaultUploadsInFlight)}
}

// agentUploadGate admits an agent's (or token's) upload before its body
// is read — the Idempotency-Key buffering included — while the uploader
// has fewer than the limit in progress.
func (s *Server) agentUploadGate(w http.ResponseWriter, r *http.Request) (func(), error) {
	actor, _ := actorOf(r.Context())
	release, ok := s.uploads.inFlight.acquire(uploaderKey(actor.AccountID, agentdesk.UploaderOf(actor)))
	if !ok {
		return nil, tooManyUploads(w)
	}
	return release, nil
}

func uploaderKey(accountID int64, by agentdesk.Uploader) string {
	return fmt.Sprintf("%d:%d:%d:%s", accountID, by.AgentID, by.TokenID, by.VisitorID)
}

// gated runs next once gate admits the request, and releases it after.
func (s *Server) gated(next http.Handler, gate func(http.ResponseWriter, *http.Request) (func(), error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, err := gate(w, r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) uploadAttachment(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	up, err := readUpload(w, r, s.uploads.maxBytes)
	if err != nil {
		return err
	}
	up.By = agentdesk.UploaderOf(actor)
	u, err := s.store.CreateUpload(r.Context(), actor.AccountID, *up, s.uploads.files)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u.Attachment)
	return nil
}

// readUpload reads the one file of a multipart upload, at most max bytes:
// a larger body is refused as soon as it is known to be larger (413 on
// file), a form that is not multipart is 400, a missing or empty file 422.
func readUpload(w http.ResponseWriter, r *http.Request, max int64) (*postgres.NewUpload, error) {
	tooLarge := &agentdesk.Error{Kind: agentdesk.TooLarge, Field: "file", Message: "the file is larger than " + sizeText(max)}
	if r.ContentLength > max+multipartSlack {
		return nil, tooLarge
	}
	// The form is the file's envelope: a broken one is about the file.
	badForm := func(msg string) error {
		return &agentdesk.Error{Kind: agentdesk.Invalid, Field: "file", Message: msg, Err: errBadRequest}
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, badForm("Content-Type must be multipart/form-data with a boundary")
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, max+multipartSlack), params["boundary"])
	partErr := func(err error) error {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			return tooLarge
		}
		return badForm("malformed multipart body: " + err.Error())
	}
	up := &postgres.NewUpload{}
	var data []byte
	var haveFile bool
	var name, claimed string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, partErr(err)
		}
		switch p.FormName() {
		case "file":
			if haveFile {
				return nil, agentdesk.FieldError("file", "send one file per upload")
			}
			haveFile = true
			// One byte more than allowed tells a file that is too large
			// without reading the rest of it.
			data, err = readFilePart(p, max, r, params["boundary"])
			if errors.Is(err, errFileTooLarge) {
				return nil, tooLarge
			}
			if err != nil {
				return nil, partErr(err)
			}
			if name == "" {
				name = p.FileName()
			}
			claimed = p.Header.Get("Content-Type")
		case "filename":
			b, err := io.ReadAll(io.LimitReader(p, 1025))
			if err != nil {
				return nil, partErr(err)
			}
			if len(b) > 1024 {
				return nil, agentdesk.FieldError("filename", "must be at most 1024 bytes")
			}
			name = string(b)
		default:
			return nil, &agentdesk.Error{Kind: agentdesk.Invalid, Field: p.FormName(), Message: "unknown form field " + p.FormName(), Err: errBadRequest}
		}
	}
	if !haveFile {
		return nil, agentdesk.FieldError("file", "is required (a multipart file part named file)")
	}
	if len(data) == 0 {
		return nil, agentdesk.FieldError("file", "is empty")
	}
	up.Filename = agentdesk.CleanFilename(name)
	up.ContentType = contentTypeOf(claimed, data)
	up.Data = data
	return up, nil
}

var errFileTooLarge = errors.New("file too large")

// readFilePart reads the file part p, at most max bytes (errFileTooLarge
// beyond). When the whole body is in memory already (an Idempotency-Key
// request, rawBody), the file is the slice of it the part came from rather
// than a second copy: the part's content ends just before a newline and the
// delimiter, and the slice ending there with the part's length and SHA-256
// is it. Should no slice match, the part is read again from the body.
func readFilePart(p io.Reader, max int64, r *http.Request, boundary string) ([]byte, error) {
	raw := rawBody(r)
	if raw == nil {
		data, err := readAllHint(io.LimitReader(p, max+1), r.ContentLength, max+multipartSlack)
		if err == nil && int64(len(data)) > max {
			err = errFileTooLarge
		}
		return data, err
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(p, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, errFileTooLarge
	}
	sum := h.Sum(nil)
	delim := []byte("--" + boundary)
	for off := 0; ; {
		i := bytes.Index(raw[off:], delim)
		if i < 0 {
			break
		}
		end := off + i
		off = end + len(delim)
		for _, nl := range []string{"\r\n", "\n"} {
			if e := end - len(nl); e-int(n) >= 0 && string(raw[e:end]) == nl {
				if got := sha256.Sum256(raw[e-int(n) : e]); bytes.Equal(got[:], sum) {
					return raw[e-int(n) : e : e], nil
				}
			}
		}
	}
	mr := multipart.NewReader(bytes.NewReader(raw), boundary)
	for {
		again, err := mr.NextPart()
		if err != nil {
			return nil, err
		}
		if again.FormName() == "file" {
			return readAllHint(io.LimitReader(again, max+1), n, max+1)
		}
	}
}

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return itoa(n>>20) + " MB"
	}
	return itoa(n) + " bytes"
}

// contentTypeOf is the type the client gave, or the sniffed one when it
// gave none or only application/octet-stream. Only the charset parameter
// is kept.
func contentTypeOf(claimed string, data []byte) string {
	if mt, params, err := mime.ParseMediaType(claimed); err == nil && mt != "application/octet-stream" && strings.Count(mt, "/") == 1 && len(mt) <= 100 {
		keep := map[string]string{}
		if cs := params["charset"]; cs != "" && len(cs) <= 40 {
			keep["charset"] = cs
		}
		if ct := mime.FormatMediaType(mt, keep); ct != "" {
			return ct
		}
	}
	return http.DetectContentType(data)
}

// agentUpload finds the path's attachment as the agent may see it: on a
// message of a ticket the agent can see, or uploaded by the agent and on
// no message yet. Anything else is 404, like a ticket the agent cannot see.
func (s *Server) agentUpload(r *http.Request) (*postgres.Upload, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	actor, _ := actorOf(ctx)
	u, err := s.store.UploadByID(ctx, actor.AccountID, id)
	if err != nil {
		return nil, err
	}
	notFound := agentdesk.Errorf(agentdesk.NotFound, "attachment %d not found", id)
	if u.MessageID == nil {
		if u.By != agentdesk.UploaderOf(actor) {
			return nil, notFound
		}
		return u, nil
	}
	if _, err := s.store.Ticket(ctx, actor, u.TicketID); err != nil {
		if agentdesk.IsKind(err, agentdesk.NotFound) {
			return nil, notFound
		}
		return nil, err
	}
	return u, nil
}

func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request) error {
	u, err := s.agentUpload(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u.Attachment)
	return nil
}

func (s *Server) attachmentContent(w http.ResponseWriter, r *http.Request) error {
	u, err := s.agentUpload(r)
	if err != nil {
		return err
	}
	return s.serveUpload(w, r, u)
}

// inlineTypes are the types shown in the browser rather than downloaded:
// raster images only (SVG and HTML can carry script).
var inlineTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// serveUpload writes a file's bytes so a browser can never run them as
// part of our origin: its stored type with nosniff, a sandbox CSP, and a
// download unless it is a raster image. The ETag is the SHA-256, so a
// cached copy is revalidated without reading the bytes.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, u *postgres.Upload) error {
	h := w.Header()
	etag := `"` + hex.EncodeToString(u.SHA256[:]) + `"`
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	blob, err := s.store.OpenBlob(r.Context(), u.AccountID, u.SHA256)
	if err != nil {
		return err
	}
	defer blob.Close()
	mt, _, _ := mime.ParseMediaType(u.ContentType)
	disp := "attachment"
	if inlineTypes[mt] {
		disp = "inline"
	}
	name := u.Filename
	if name == "" {
		name = "attachment"
	}
	h.Set("Content-Type", u.ContentType)
	h.Set("Content-Disposition", disp+"; filename*=UTF-8''"+rfc5987(name))
	// ServeContent answers ranges (If-Range against the ETag) and copies in
	// small pieces from the open file.
	http.ServeContent(w, r, "", time.Time{}, blob)
	return nil
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// rfc5987 percent-encodes s for a filename* parameter: every byte but the
// attr-chars of RFC 8187.
func rfc5987(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

type timelineList = func(ctx context.Context, actor agentdesk.Actor, id int64, p agentdesk.Page) ([]agentdesk.Message, string, error)

// withAttachments lists like list and adds each message's attachments.
func (s *Server) withAttachments(list timelineList) timelineList {
	return func(ctx context.Context, actor agentdesk.Actor, id int64, p agentdesk.Page) ([]agentdesk.Message, string, error) {
		items, next, err := list(ctx, actor, id, p)
		if err != nil {
			return nil, "", err
		}
		if err := postgres.FillAttachments(ctx, s.store.DB(), actor.AccountID, items); err != nil {
			return nil, "", err
		}
		return items, next, nil
	}
}

// messageAttachments is m with its attachments.
func (s *Server) messageAttachments(ctx context.Context, accountID int64, m *agentdesk.Message) (*agentdesk.Message, error) {
	one := []agentdesk.Message{*m}
	if err := postgres.FillAttachments(ctx, s.store.DB(), accountID, one); err != nil {
		return nil, err
	}
	return &one[0], nil
}
