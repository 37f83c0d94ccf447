package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"agentdesk/agentdesk"
)

// The fingerprint of an Idempotency-Key ignores a multipart body's
// boundary and nothing else.
func TestUploadFingerprint(t *testing.T) {
	t.Parallel()
	form := func(boundary, name string, data []byte, ctypeExtra string) *http.Request {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		if err := mw.SetBoundary(boundary); err != nil {
			t.Fatal(err)
		}
		w, _ := mw.CreateFormFile("file", name)
		w.Write(data) //nolint:errcheck
		mw.Close()
		r, _ := http.NewRequest("POST", "/api/v1/attachments", &b)
		r.Header.Set("Content-Type", mw.FormDataContentType()+ctypeExtra)
		return r
	}
	fp := func(r *http.Request) string {
		body, _ := io.ReadAll(r.Body)
		return hex.EncodeToString(fingerprint(r, body))
	}
	base := fp(form("aaaa1111", "a.pdf", pdfBytes, ""))
	for _, c := range []struct {
		name string
		r    *http.Request
		same bool
	}{
		{"another boundary", form("bbbb2222bbbb2222", "a.pdf", pdfBytes, ""), true},
		{"another file", form("aaaa1111", "a.pdf", pngBytes, ""), false},
		{"another name", form("aaaa1111", "b.pdf", pdfBytes, ""), false},
		{"another boundary and file", form("cccc", "a.pdf", pngBytes, ""), false},
		{"another Content-Type parameter", form("aaaa1111", "a.pdf", pdfBytes, "; charset=latin1"), false},
	} {
		if got := fp(c.r) == base; got != c.same {
			t.Errorf("%s: same fingerprint %v, want %v", c.name, got, c.same)
		}
	}
	// JSON bodies keep the fingerprint they always had (keys already
	// claimed stay valid).
	j, _ := http.NewRequest("POST", "/api/v1/tickets", strings.NewReader(`{"a":1}`))
	j.Header.Set("Content-Type", "application/json")
	if a, b := fp(j), sha256.Sum256([]byte("POST /api/v1/tickets\n"+`{"a":1}`)); a != hex.EncodeToString(b[:]) {
		t.Errorf("JSON fingerprint changed: %s, was %s", a, b)
	}
}

// stalledUpload starts an upload whose body stops after its part headers,
// so the server holds it in progress; finish sends the rest (the file and
// the closing boundary, or an error) and returns the answer.
func stalledUpload(t *testing.T, c *client, path string, headers ...string) (finish func(ok bool) response) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequest("POST", c.base+path, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	done := make(chan response, 1)
	go func() {
		res, err := c.http.Do(req)
		if err != nil {
			done <- response{status: -1, body: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		done <- response{status: res.StatusCode, body: raw, header: res.Header}
	}()
	part, err := mw.CreateFormFile("file", "slow.txt")
	if err != nil {
		t.Fatal(err)
	}
	return func(ok bool) response {
		if ok {
			part.Write([]byte("slow but complete")) //nolint:errcheck
			mw.Close()
			pw.Close()
		} else {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		return <-done
	}
}

// waitFor polls until cond holds: the server's side of a request has no
// other signal. Not a timing assertion — only a bound on a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// One agent may have four uploads in progress; a fifth is 429 on file
// before its body is read (an Idempotency-Key is not used up by it), and
// goes through once one of the four is done. Other agents are not held up.
func TestAttachmentUploadsInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	key := uploaderKey(e.account, agentdesk.Uploader{AgentID: e.ids["agent"]})
	inFlight := e.server.uploads.inFlight
	var finish []func(bool) response
	for range DefaultUploadsInFlight {
		finish = append(finish, stalledUpload(t, agent, "/api/v1/attachments"))
	}
	waitFor(t, "four uploads in progress", func() bool { return inFlight.count(key) == DefaultUploadsInFlight })

	ct, body := multipartFile(t, "fifth.pdf", "", pdfBytes)
	res := agent.do(t, "POST", "/api/v1/attachments", body, "Content-Type", ct, IdempotencyHeader, "fifth")
	if kind, field := res.errorKind(t); res.status != http.StatusTooManyRequests || field != "file" || res.header.Get("Retry-After") == "" {
		t.Fatalf("fifth upload: %d %s %q %v", res.status, kind, field, res.header)
	}
	wantStatus(t, "another agent's upload", e.clients["agent2"].upload(t, "/api/v1/attachments", "other.pdf", "", pdfBytes), http.StatusCreated)

	wantStatus(t, "a stalled upload finished", finish[0](true), http.StatusCreated)
	waitFor(t, "a place to free", func() bool { return inFlight.count(key) < DefaultUploadsInFlight })
	res = agent.do(t, "POST", "/api/v1/attachments", body, "Content-Type", ct, IdempotencyHeader, "fifth")
	wantStatus(t, "fifth upload retried", res, http.StatusCreated)
	if res.header.Get("Idempotent-Replayed") != "" {
		t.Error("the refused attempt used up the Idempotency-Key")
	}
	for _, f := range finish[1:] {
		if res := f(false); res.status == http.StatusCreated {
			t.Errorf("a broken upload was stored: %s", res.body)
		}
	}
	waitFor(t, "every place back", func() bool { return inFlight.count(key) == 0 })
	if n := e.deskCount(`SELECT count(*) FROM uploads`); n != 3 {
		t.Errorf("%d uploads, want 3", n)
	}
}

// A chat visitor has the same limit, and a form that is not a multipart
// file is a 400 on file.
func TestWidgetUploadsInFlightAndBadForm(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	v := ct.visitor(t, "")
	v.connect(ct)
	wantStatus(t, "start chat", v.post("/chat", map[string]any{"name": "Pia", "email": "pia@example.org", "queue_id": ct.queueID, "body": "Hello"}), http.StatusCreated)

	hdrs := []string{"Origin", shopOrigin, "Authorization", "Bearer " + v.token}
	for _, c := range []struct{ name, ctype, body string }{
		{"not multipart", "application/json", `{"file":"x"}`},
		{"malformed multipart", "multipart/form-data; boundary=zzz", "--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"},
	} {
		res := v.c.do(t, "POST", "/api/v1/widget/acme/attachments", c.body, append([]string{"Content-Type", c.ctype}, hdrs...)...)
		if kind, field := res.errorKind(t); res.status != http.StatusBadRequest || field != "file" {
			t.Errorf("%s: %d %s %q", c.name, res.status, kind, field)
		}
	}

	key := uploaderKey(ct.account, agentdesk.Uploader{VisitorID: v.id})
	inFlight := ct.server.uploads.inFlight
	var finish []func(bool) response
	for range DefaultUploadsInFlight {
		finish = append(finish, stalledUpload(t, v.c, "/api/v1/widget/acme/attachments", hdrs...))
	}
	waitFor(t, "four visitor uploads in progress", func() bool { return inFlight.count(key) == DefaultUploadsInFlight })
	res := v.upload("fifth.png", pngBytes)
	if kind, field := res.errorKind(t); res.status != http.StatusTooManyRequests || field != "file" {
		t.Errorf("fifth visitor upload: %d %s %q", res.status, kind, field)
	}
	for i, f := range finish {
		if res := f(i == 0); (res.status == http.StatusCreated) != (i == 0) {
			t.Errorf("stalled visitor upload %d: %d %s", i, res.status, res.body)
		}
	}
	waitFor(t, "every visitor place back", func() bool { return inFlight.count(key) == 0 })
	wantStatus(t, "visitor upload after", v.upload("after.png", pngBytes), http.StatusCreated)
}

// A relative blob directory is stored as an absolute path, so a process
// started elsewhere finds the files; a file is served from disk with
// ranges and revalidation.
func TestAttachmentBlobDirRelative(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, dir)
	if err != nil || filepath.IsAbs(rel) {
		t.Skipf("no relative path from %s to %s", wd, dir)
	}
	e := newEnv(t, WithBlobDir(rel, 64))
	agent := e.clients["agent"]
	data := bytes.Repeat([]byte("0123456789abcdef"), 100)
	res := agent.upload(t, "/api/v1/attachments", "large.bin", "", data)
	wantStatus(t, "upload", res, http.StatusCreated)
	var a agentdesk.Attachment
	res.json(t, &a)
	sum, _ := hex.DecodeString(a.SHA256)
	var path string
	if err := e.store.DB().QueryRow(t.Context(), `SELECT path FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, e.account, sum).Scan(&path); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, fmt.Sprint(e.account), a.SHA256[:2], a.SHA256)
	if path != want {
		t.Fatalf("stored path %q, want %q", path, want)
	}
	if got, err := os.ReadFile(want); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file: %v", err)
	}

	checkRanges(t, agent, a, data)
}

// A large file in the database is read in pieces: whole, ranges across a
// piece's end, revalidation.
func TestAttachmentLargeRowDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	data := make([]byte, 2<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	res := agent.upload(t, "/api/v1/attachments", "large.bin", "", data)
	wantStatus(t, "upload", res, http.StatusCreated)
	var a agentdesk.Attachment
	res.json(t, &a)
	if n := e.deskCount(`SELECT count(*) FROM email_blobs WHERE path IS NULL AND octet_length(bytes) = $1`, len(data)); n != 1 {
		t.Fatalf("%d rows hold the file", n)
	}
	checkRanges(t, agent, a, data)
	res = agent.do(t, "GET", a.URL, nil, "Range", "bytes=1048570-1048590,2097150-2097160")
	if res.status != http.StatusPartialContent || !bytes.Contains(res.body, data[1048570:1048591]) || !bytes.Contains(res.body, data[2097150:2097161]) {
		t.Errorf("two ranges across pieces: %d", res.status)
	}
}

func checkRanges(t *testing.T, agent *client, a agentdesk.Attachment, data []byte) {
	t.Helper()
	n := len(data)
	etag := `"` + a.SHA256 + `"`
	for _, c := range []struct {
		name    string
		headers []string
		status  int
		body    []byte
	}{
		{"whole", nil, 200, data},
		{"range", []string{"Range", "bytes=16-47"}, 206, data[16:48]},
		{"range to the end", []string{"Range", fmt.Sprintf("bytes=%d-", n-100)}, 206, data[n-100:]},
		{"range over the middle", []string{"Range", fmt.Sprintf("bytes=%d-%d", n/2-10, n/2+10)}, 206, data[n/2-10 : n/2+11]},
		{"suffix range", []string{"Range", "bytes=-10"}, 206, data[len(data)-10:]},
		{"If-Range matching", []string{"Range", "bytes=0-3", "If-Range", etag}, 206, data[:4]},
		{"If-Range stale", []string{"Range", "bytes=0-3", "If-Range", `"old"`}, 200, data},
		{"If-None-Match", []string{"If-None-Match", etag}, 304, nil},
		{"unsatisfiable", []string{"Range", fmt.Sprintf("bytes=%d-", n+10)}, 416, nil},
	} {
		res := agent.do(t, "GET", a.URL, nil, c.headers...)
		if res.status != c.status || (c.body != nil && !bytes.Equal(res.body, c.body)) {
			t.Errorf("%s: %d, %d bytes", c.name, res.status, len(res.body))
		}
		if res.status < 300 && (res.header.Get("ETag") != etag || res.header.Get("Content-Security-Policy") != "sandbox") {
			t.Errorf("%s: headers %v", c.name, res.header)
		}
	}
}

// An upload with an Idempotency-Key takes its file from the body already
// in memory: whatever the body's shape, the stored bytes are the file's.
func TestAttachmentIdempotentBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	tricky := []byte("line one\r\n--not-the-boundary\r\n\r\n--b0undaryX almost\r\n")
	for i, c := range []struct {
		name, body string
		want       []byte
	}{
		{"CRLF", "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n" + string(tricky) + "\r\n--b0undary--\r\n", tricky},
		{"LF only", "--b0undary\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\n\nplain\nlines\n--b0undary--\n", []byte("plain\nlines")},
		{"name after the file", "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nsame\r\n--b0undary\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\nsame\r\n--b0undary--\r\n", []byte("same")},
		{"quoted-printable", "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"q.txt\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =3D ok\r\n--b0undary--\r\n", []byte("café = ok")},
	} {
		res := agent.do(t, "POST", "/api/v1/attachments", c.body, "Content-Type", "multipart/form-data; boundary=b0undary", IdempotencyHeader, fmt.Sprint("shape-", i))
		wantStatus(t, c.name, res, http.StatusCreated)
		var a agentdesk.Attachment
		res.json(t, &a)
		if got := agent.do(t, "GET", a.URL, nil); !bytes.Equal(got.body, c.want) {
			t.Errorf("%s: stored %q, want %q", c.name, got.body, c.want)
		}
	}
}
