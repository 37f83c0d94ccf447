package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"agentdesk/agentdesk"
)

// multipartFile builds an upload body: the file (with a part Content-Type
// when ctype is set) and any extra fields.
func multipartFile(t *testing.T, filename, ctype string, data []byte, fields ...string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1]) //nolint:errcheck
	}
	if data != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data) //nolint:errcheck
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func (c *client) upload(t *testing.T, path, filename, ctype string, data []byte, headers ...string) response {
	t.Helper()
	ct, body := multipartFile(t, filename, ctype, data)
	return c.do(t, "POST", path, body, append([]string{"Content-Type", ct}, headers...)...)
}

var pdfBytes = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

// A PNG's signature and IHDR are enough for the sniffer.
var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 40)...)

func TestAttachmentRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]

	// No type given: sniffed. The name loses its directories and controls.
	ct, body := multipartFile(t, "ignored.bin", "", pdfBytes, "filename", "../../etc/re\x01port.pdf\u202e")
	res := agent.do(t, "POST", "/api/v1/attachments", body, "Content-Type", ct)
	wantStatus(t, "upload", res, http.StatusCreated)
	var a agentdesk.Attachment
	res.json(t, &a)
	sum := sha256.Sum256(pdfBytes)
	if a.ID == 0 || a.Filename != "report.pdf" || a.ContentType != "application/pdf" || a.Size != int64(len(pdfBytes)) ||
		a.SHA256 != hex.EncodeToString(sum[:]) || a.URL != fmt.Sprintf("/api/v1/attachments/%d/content", a.ID) {
		t.Fatalf("upload answer %+v", a)
	}
	var meta agentdesk.Attachment
	res = agent.do(t, "GET", fmt.Sprintf("/api/v1/attachments/%d", a.ID), nil)
	wantStatus(t, "metadata", res, http.StatusOK)
	res.json(t, &meta)
	if meta != a {
		t.Errorf("metadata %+v, want %+v", meta, a)
	}
	res = agent.do(t, "GET", a.URL, nil)
	wantStatus(t, "content", res, http.StatusOK)
	if !bytes.Equal(res.body, pdfBytes) {
		t.Errorf("content differs: %q", res.body)
	}
	h := res.header
	for k, want := range map[string]string{
		"Content-Type": "application/pdf", "Content-Length": fmt.Sprint(len(pdfBytes)),
		"Content-Disposition":    "attachment; filename*=UTF-8''report.pdf",
		"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox", "ETag": `"` + a.SHA256 + `"`,
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	res = agent.do(t, "GET", a.URL, nil, "If-None-Match", `"`+a.SHA256+`"`)
	if res.status != http.StatusNotModified || len(res.body) != 0 {
		t.Errorf("If-None-Match: %d %q", res.status, res.body)
	}

	// The same bytes again: a new upload, one blob. A raster image shows
	// inline; a name with spaces and non-ASCII is encoded.
	res = agent.upload(t, "/api/v1/attachments", "copy.pdf", "application/octet-stream", pdfBytes)
	wantStatus(t, "upload again", res, http.StatusCreated)
	var again agentdesk.Attachment
	res.json(t, &again)
	if again.ID == a.ID || again.SHA256 != a.SHA256 || again.ContentType != "application/pdf" {
		t.Errorf("second upload %+v", again)
	}
	if n := e.deskCount(`SELECT count(*) FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, e.account, sum[:]); n != 1 {
		t.Errorf("%d blobs for one content", n)
	}
	res = agent.upload(t, "/api/v1/attachments", "Foto Größe;1.png", "image/png", pngBytes)
	wantStatus(t, "png", res, http.StatusCreated)
	var img agentdesk.Attachment
	res.json(t, &img)
	res = agent.do(t, "GET", img.URL, nil)
	if got := res.header.Get("Content-Disposition"); got != "inline; filename*=UTF-8''Foto%20Gr%C3%B6%C3%9Fe%3B1.png" {
		t.Errorf("png disposition %q", got)
	}
	// An HTML file claimed as HTML is never shown inline.
	res = agent.upload(t, "/api/v1/attachments", "x.html", "text/html", []byte("<script>alert(1)</script>"))
	var page agentdesk.Attachment
	res.json(t, &page)
	if res = agent.do(t, "GET", page.URL, nil); !strings.HasPrefix(res.header.Get("Content-Disposition"), "attachment;") || res.header.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("html served as %v", res.header)
	}

	// Unlinked: only the uploader sees it.
	for who, want := range map[string]int{"agent2": 404, "admin": 404, "anon": 401} {
		for _, p := range []string{fmt.Sprintf("/api/v1/attachments/%d", a.ID), a.URL} {
			if res := e.clients[who].do(t, "GET", p, nil); res.status != want {
				t.Errorf("%s GET %s: %d, want %d", who, p, res.status, want)
			}
		}
	}
	if res := e.clients["anon"].upload(t, "/api/v1/attachments", "a.pdf", "", pdfBytes); res.status != http.StatusUnauthorized {
		t.Errorf("anonymous upload: %d", res.status)
	}
}

// Bad uploads are refused with the right status and field, and nothing is
// stored.
func TestAttachmentBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithAttachmentLimits(1024, 512))
	agent := e.clients["agent"]
	big := bytes.Repeat([]byte("x"), 1025)
	ctFilenameOnly, filenameOnly := multipartFile(t, "", "", nil, "filename", "a.txt")
	ctEmpty, empty := multipartFile(t, "e.txt", "", []byte{})
	ctUnknown, unknown := multipartFile(t, "a.txt", "", []byte("hi"), "color", "blue")
	ctBig, bigBody := multipartFile(t, "big.bin", "", big)
	// Far more than the limit: refused from Content-Length, unread.
	ctHuge, hugeBody := multipartFile(t, "huge.bin", "", bytes.Repeat([]byte("y"), 200<<10))
	for _, c := range []struct {
		name        string
		ctype       string
		body        []byte
		status      int
		field       string
		idempotency bool
	}{
		{"oversize", ctBig, bigBody, 413, "file", false},
		{"oversize with Idempotency-Key", ctBig, bigBody, 413, "file", true},
		{"huge", ctHuge, hugeBody, 413, "file", false},
		{"huge with Idempotency-Key", ctHuge, hugeBody, 413, "file", true},
		{"malformed multipart", "multipart/form-data; boundary=zzz", []byte("--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"), 400, "file", false},
		{"malformed multipart with Idempotency-Key", "multipart/form-data; boundary=zzz", []byte("--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"), 400, "file", true},
		{"not multipart", "application/json", []byte(`{"file":"x"}`), 400, "file", false},
		{"no boundary", "multipart/form-data", []byte("x"), 400, "file", false},
		{"missing file", ctFilenameOnly, filenameOnly, 422, "file", false},
		{"empty file", ctEmpty, empty, 422, "file", false},
		{"unknown field", ctUnknown, unknown, 400, "color", false},
	} {
		hdrs := []string{"Content-Type", c.ctype}
		if c.idempotency {
			hdrs = append(hdrs, IdempotencyHeader, "bad-"+c.name)
		}
		res := agent.do(t, "POST", "/api/v1/attachments", c.body, hdrs...)
		if res.status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, res.status, c.status, res.body)
			continue
		}
		if kind, field := res.errorKind(t); c.field != "" && field != c.field {
			t.Errorf("%s: %s on %q, want field %q", c.name, kind, field, c.field)
		}
	}
	if n := e.deskCount(`SELECT count(*) FROM uploads`) + e.deskCount(`SELECT count(*) FROM email_blobs`); n != 0 {
		t.Errorf("%d rows stored by bad uploads", n)
	}
	// Exactly the limit is fine.
	wantStatus(t, "at the limit", agent.upload(t, "/api/v1/attachments", "ok.bin", "", big[:1024]), http.StatusCreated)
}

func TestAttachmentIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	ct, body := multipartFile(t, "a.pdf", "", pdfBytes)
	first := agent.do(t, "POST", "/api/v1/attachments", body, "Content-Type", ct, IdempotencyHeader, "k1")
	wantStatus(t, "first", first, http.StatusCreated)
	// A real client's retry: the same file under a new random boundary.
	ctRetry, retry := multipartFile(t, "a.pdf", "", pdfBytes)
	if ctRetry == ct {
		t.Fatal("the multipart writer chose the same boundary twice")
	}
	second := agent.do(t, "POST", "/api/v1/attachments", retry, "Content-Type", ctRetry, IdempotencyHeader, "k1")
	wantStatus(t, "retry", second, http.StatusCreated)
	if !bytes.Equal(first.body, second.body) || second.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry answered %s, first %s", second.body, first.body)
	}
	if n := e.deskCount(`SELECT count(*) FROM uploads`); n != 1 {
		t.Errorf("%d uploads after a retried upload", n)
	}
	// The key with another file is refused.
	ct2, body2 := multipartFile(t, "b.pdf", "", pngBytes)
	if res := agent.do(t, "POST", "/api/v1/attachments", body2, "Content-Type", ct2, IdempotencyHeader, "k1"); res.status != http.StatusConflict {
		t.Errorf("same key, other file: %d %s", res.status, res.body)
	}
	// The same file under another name is another request too.
	ct3, body3 := multipartFile(t, "renamed.pdf", "", pdfBytes)
	if res := agent.do(t, "POST", "/api/v1/attachments", body3, "Content-Type", ct3, IdempotencyHeader, "k1"); res.status != http.StatusConflict {
		t.Errorf("same key, same bytes, other name: %d %s", res.status, res.body)
	}
	if n := e.deskCount(`SELECT count(*) FROM uploads`); n != 1 {
		t.Errorf("%d uploads after refused reuses of a key", n)
	}
}

// Files are linked to a message in its transaction: once, only the
// uploader's, at most ten; the message lists them on every endpoint, and
// another team's private ticket hides them.
func TestAttachmentLinking(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent, agent2 := e.clients["agent"], e.clients["agent2"]
	up := func(c *client, name string, data []byte) agentdesk.Attachment {
		t.Helper()
		res := c.upload(t, "/api/v1/attachments", name, "", data)
		wantStatus(t, "upload "+name, res, http.StatusCreated)
		var a agentdesk.Attachment
		res.json(t, &a)
		return a
	}
	customer := e.deskCustomer("Files")
	var team agentdesk.Team
	e.clients["admin"].do(t, "POST", "/api/v1/teams", map[string]any{"name": "Legal", "private": true, "member_ids": []int64{e.ids["agent"]}}).json(t, &team)
	tk := e.deskTicket("agent", map[string]any{"subject": "Contract", "customer_id": customer, "team_id": team.ID, "message": map[string]any{"direction": "in", "body": "see file"}})
	msgs := fmt.Sprintf("/api/v1/tickets/%d/messages", tk.ID)

	a, b := up(agent, "a.pdf", pdfBytes), up(agent, "b.png", pngBytes)
	theirs := up(agent2, "theirs.pdf", pdfBytes)
	res := agent.do(t, "POST", msgs, map[string]any{"kind": "note", "body": "two files", "attachment_ids": []int64{b.ID, a.ID}})
	wantStatus(t, "note with files", res, http.StatusCreated)
	var m agentdesk.Message
	res.json(t, &m)
	if len(m.Attachments) != 2 || m.Attachments[0].ID != b.ID || m.Attachments[1].ID != a.ID || m.Attachments[1].Filename != "a.pdf" ||
		m.Attachments[1].URL != a.URL || m.Attachments[1].SHA256 != "" {
		t.Fatalf("message attachments %+v", m.Attachments)
	}
	var list List[agentdesk.Message]
	agent.do(t, "GET", msgs, nil).json(t, &list)
	if n := len(list.Items); n != 2 || len(list.Items[1].Attachments) != 2 || len(list.Items[0].Attachments) != 0 {
		t.Errorf("listed %+v", list.Items)
	}
	var tl List[agentdesk.Message]
	agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/timeline", customer), nil).json(t, &tl)
	if len(tl.Items) != 2 || len(tl.Items[0].Attachments) != 2 {
		t.Errorf("timeline %+v", tl.Items)
	}
	// Linked: whoever sees the ticket reads it; another team's agent does
	// not, even the one who could have read it unlinked.
	if res := e.clients["supervisor"].do(t, "GET", a.URL, nil); res.status != 200 || !bytes.Equal(res.body, pdfBytes) {
		t.Errorf("supervisor: %d", res.status)
	}
	if res := agent2.do(t, "GET", a.URL, nil); res.status != 404 {
		t.Errorf("other team's agent: %d", res.status)
	}

	before := e.deskCount(`SELECT count(*) FROM messages`)
	c := up(agent, "c.pdf", []byte("%PDF-1.4 c"))
	eleven := make([]int64, 11)
	for i := range eleven {
		eleven[i] = c.ID + int64(i)
	}
	for _, bad := range []struct {
		name string
		ids  []int64
	}{
		{"already linked", []int64{a.ID}},
		{"linked and new", []int64{c.ID, b.ID}},
		{"another agent's", []int64{theirs.ID}},
		{"unknown", []int64{999999}},
		{"twice", []int64{c.ID, c.ID}},
		{"eleven", eleven},
	} {
		res := agent.do(t, "POST", msgs, map[string]any{"kind": "note", "body": bad.name, "attachment_ids": bad.ids})
		if kind, field := res.errorKind(t); res.status != 422 || field != "attachment_ids" {
			t.Errorf("%s: %d %s %q: %s", bad.name, res.status, kind, field, res.body)
		}
	}
	if after := e.deskCount(`SELECT count(*) FROM messages`); after != before {
		t.Errorf("messages %d → %d after refused links", before, after)
	}
	if n := e.deskCount(`SELECT count(*) FROM uploads WHERE id = $1 AND message_id IS NULL`, c.ID); n != 1 {
		t.Error("a refused message linked a file")
	}
	// A file alone is a message.
	res = agent.do(t, "POST", msgs, map[string]any{"kind": "note", "body": "", "attachment_ids": []int64{c.ID}})
	wantStatus(t, "file only", res, http.StatusCreated)
	if res := agent.do(t, "GET", fmt.Sprintf("/api/v1/tickets/%d/messages", tk.ID), nil); !strings.Contains(string(res.body), `"filename":"c.pdf"`) {
		t.Errorf("file-only message not listed: %s", res.body)
	}
}

// With a blob directory, large files live in files (the row keeps the
// path, not the bytes) and download the same; small ones stay in the row.
func TestAttachmentBlobDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, WithBlobDir(dir, 64))
	agent := e.clients["agent"]
	large := bytes.Repeat([]byte("0123456789abcdef"), 100)
	for _, c := range []struct {
		name   string
		data   []byte
		inFile bool
	}{{"large.bin", large, true}, {"small.txt", []byte("tiny"), false}} {
		res := agent.upload(t, "/api/v1/attachments", c.name, "", c.data)
		wantStatus(t, c.name, res, http.StatusCreated)
		var a agentdesk.Attachment
		res.json(t, &a)
		sum, _ := hex.DecodeString(a.SHA256)
		var path *string
		var inRow bool
		if err := e.store.DB().QueryRow(t.Context(), `SELECT path, bytes IS NOT NULL FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, e.account, sum).Scan(&path, &inRow); err != nil {
			t.Fatal(err)
		}
		if inFile := path != nil && strings.HasPrefix(*path, dir); inFile != c.inFile || inRow == c.inFile {
			t.Errorf("%s: path %v, bytes in row %v", c.name, path, inRow)
		}
		if res := agent.do(t, "GET", a.URL, nil); res.status != 200 || !bytes.Equal(res.body, c.data) {
			t.Errorf("%s download: %d", c.name, res.status)
		}
	}
}
