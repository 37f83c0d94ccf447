package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func TestUploadRetentionFlag(t *testing.T) {
	for _, c := range []struct {
		args    []string
		env     string
		want    time.Duration
		wantErr string
	}{
		{nil, "", 24 * time.Hour, ""},
		{[]string{"--upload-retention=90m"}, "", 90 * time.Minute, ""},
		{nil, "2h", 2 * time.Hour, ""},
		{[]string{"--upload-retention=30s"}, "", 0, "upload-retention: must be at least 1m0s"},
		{[]string{"--upload-retention=soon"}, "", 0, "upload-retention: must be a duration"},
		{nil, "-1h", 0, "AGENTDESK_UPLOAD_RETENTION: must be at least 1m0s"},
	} {
		t.Run(strings.Join(c.args, " ")+" env="+c.env, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("AGENTDESK_UPLOAD_RETENTION", c.env)
			}
			fs := newFlagSet("serve")
			fs.SetOutput(io.Discard)
			var cc channelConfig
			cc.flags(fs)
			err := parseFlags(fs, c.args)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.uploadTTL.duration(); got != c.want {
				t.Errorf("retention %s, want %s", got, c.want)
			}
		})
	}
	for _, c := range []struct{ retention, want time.Duration }{{24 * time.Hour, time.Hour}, {time.Minute, time.Minute}, {2 * time.Hour, 5 * time.Minute}, {30 * 24 * time.Hour, time.Hour}} {
		if got := cleanupInterval(c.retention); got != c.want {
			t.Errorf("interval for %s: %s, want %s", c.retention, got, c.want)
		}
	}
}

// testServe is a real serve on a fresh database, wired as serve wires it
// (routing off), with an admin API token.
type testServe struct {
	base, token string
	dbURL       string
	db          *pgxpool.Pool
	store       *postgres.Store
	acct, admin int64
	parts       *lifecycle
}

// startTestServe builds the server; prepare may adjust the parts before
// they start.
func startTestServe(t *testing.T, ch channelConfig, prepare func(*testServe)) *testServe {
	t.Helper()
	fx := newAccountDB(t, "Files Co", "files.test", 10)
	s := &testServe{dbURL: fx.url, db: fx.db, store: fx.store, acct: fx.acct.ID, admin: fx.admin.ID,
		token: fx.token(t, "desk", agentdesk.RoleAdmin)}
	ch.disableRouting = true
	s.base = serveInProcess(t, s.dbURL, s.store, ch, nil, func(p *lifecycle) {
		s.parts = p
		if prepare != nil {
			prepare(s)
		}
	})
	return s
}

func (s *testServe) call(t *testing.T, method, path, ctype string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (s *testServe) callJSON(t *testing.T, method, path string, v any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(v)
	return s.call(t, method, path, "application/json", b)
}

func (s *testServe) upload(t *testing.T, name string, data []byte) agentdesk.Attachment {
	t.Helper()
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data) //nolint:errcheck
	mw.Close()
	status, body := s.call(t, "POST", "/api/v1/attachments", mw.FormDataContentType(), form.Bytes())
	var a agentdesk.Attachment
	if err := json.Unmarshal(body, &a); err != nil || status != http.StatusCreated {
		t.Fatalf("upload %s: %d %s", name, status, body)
	}
	return a
}

// fakeTimer stands in for the cleanup's clock and timer: tests move the
// clock and fire the timer, and learn when each pass ends.
type fakeTimer struct {
	mu     sync.Mutex
	now    time.Time
	ticks  chan time.Time
	passes chan postgres.UploadCleanup
	errs   chan error
	asked  chan time.Duration
}

func (f *fakeTimer) install(u *uploadCleaner) {
	f.now, f.ticks, f.passes, f.errs, f.asked = time.Now(), make(chan time.Time), make(chan postgres.UploadCleanup, 10), make(chan error, 10), make(chan time.Duration, 10)
	u.now = func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	u.after = func(d time.Duration) <-chan time.Time { f.asked <- d; return f.ticks }
	u.passed = func(c postgres.UploadCleanup, err error) { f.passes <- c; f.errs <- err }
}

func (f *fakeTimer) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// pass fires the timer and returns what the pass removed.
func (f *fakeTimer) pass(t *testing.T) postgres.UploadCleanup {
	t.Helper()
	select {
	case f.ticks <- time.Now():
	case <-time.After(30 * time.Second):
		t.Fatal("the cleanup never waited for its timer")
	}
	return f.result(t)
}

func (f *fakeTimer) result(t *testing.T) postgres.UploadCleanup {
	t.Helper()
	select {
	case got := <-f.passes:
		if err := <-f.errs; err != nil {
			t.Fatalf("cleanup pass: %v", err)
		}
		return got
	case <-time.After(30 * time.Second):
		t.Fatal("no cleanup pass ended")
	}
	return postgres.UploadCleanup{}
}

// In serve: files uploaded over HTTP and never sent are gone after the
// retention (clock moved, timer fired), files sent on a message stay; two
// processes' cleanups running at once delete each file once.
func TestUploadCleanupInServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server")
	}
	t.Parallel()
	var a, b fakeTimer
	s := startTestServe(t, channelConfig{disableEmail: true, uploadTTL: uploadRetention(2 * time.Hour)}, func(s *testServe) {
		for i, name := range s.parts.names {
			if name == "upload-cleanup" {
				a.install(s.parts.parts[i].(*uploadCleaner))
				return
			}
		}
		t.Fatal("serve wires no upload cleanup")
	})
	// A second process on the same database.
	db2, err := postgres.Open(context.Background(), s.dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db2.Close)
	other := newUploadCleaner(postgres.NewStore(db2), slog.New(slog.NewTextHandler(io.Discard, nil)), 2*time.Hour)
	b.install(other)
	if err := other.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Stop(context.Background()) }) //nolint:errcheck
	// Both ran a pass at start, with nothing to do.
	for _, f := range []*fakeTimer{&a, &b} {
		if got := f.result(t); got != (postgres.UploadCleanup{}) {
			t.Errorf("first pass removed %+v", got)
		}
		if d := <-f.asked; d != 5*time.Minute {
			t.Errorf("interval %s, want 5m for a 2h retention", d)
		}
	}

	var customer int64
	if err := s.db.QueryRow(context.Background(), `INSERT INTO customers (account_id, name) VALUES ($1, 'Cleo') RETURNING id`, s.acct).Scan(&customer); err != nil {
		t.Fatal(err)
	}
	sent, unsent, late := s.upload(t, "sent.pdf", []byte("%PDF-1.4 sent")), s.upload(t, "unsent.pdf", []byte("%PDF-1.4 unsent")), s.upload(t, "late.pdf", []byte("%PDF-1.4 late"))
	if status, body := s.callJSON(t, "POST", "/api/v1/tickets", map[string]any{"subject": "Files", "customer_id": customer,
		"message": map[string]any{"kind": "note", "body": "contract", "attachment_ids": []int64{sent.ID}}}); status != http.StatusCreated {
		t.Fatalf("ticket: %d %s", status, body)
	}

	// Within the retention: nothing goes.
	a.advance(time.Hour)
	b.advance(time.Hour)
	if got := a.pass(t); got != (postgres.UploadCleanup{}) {
		t.Errorf("pass within the retention removed %+v", got)
	}
	<-a.asked
	if status, _ := s.call(t, "GET", unsent.URL, "", nil); status != http.StatusOK {
		t.Errorf("unsent file within the retention: %d", status)
	}

	// Past it, both processes at once.
	a.advance(2 * time.Hour)
	b.advance(2 * time.Hour)
	for _, f := range []*fakeTimer{&a, &b} {
		select {
		case f.ticks <- time.Now():
		case <-time.After(30 * time.Second):
			t.Fatal("the cleanup never waited for its timer")
		}
	}
	got := [2]postgres.UploadCleanup{a.result(t), b.result(t)}
	if n := got[0].Uploads + got[1].Uploads; n != 2 {
		t.Errorf("the two passes removed %+v and %+v, want the two unsent files once", got[0], got[1])
	}
	if n := got[0].Blobs + got[1].Blobs; n != 2 {
		t.Errorf("the two passes removed %+v and %+v, want the two unsent blobs once", got[0], got[1])
	}
	if status, _ := s.call(t, "GET", unsent.URL, "", nil); status != http.StatusNotFound {
		t.Errorf("unsent file after the retention: %d", status)
	}
	if status, body := s.call(t, "GET", sent.URL, "", nil); status != http.StatusOK || string(body) != "%PDF-1.4 sent" {
		t.Errorf("sent file after the retention: %d %q", status, body)
	}
	// Sending a file that is gone is refused by field, and stores nothing.
	status, body := s.callJSON(t, "POST", "/api/v1/tickets", map[string]any{"subject": "Late", "customer_id": customer,
		"message": map[string]any{"kind": "note", "body": "late", "attachment_ids": []int64{late.ID}}})
	var e struct {
		Error struct {
			Field string `json:"field"`
		} `json:"error"`
	}
	json.Unmarshal(body, &e) //nolint:errcheck
	if status != http.StatusUnprocessableEntity || e.Error.Field != "message.attachment_ids" {
		t.Errorf("ticket with a deleted file: %d %s", status, body)
	}
	var tickets int
	s.db.QueryRow(context.Background(), `SELECT count(*) FROM tickets WHERE account_id = $1`, s.acct).Scan(&tickets) //nolint:errcheck
	if tickets != 1 {
		t.Errorf("%d tickets after a refused one", tickets)
	}
}
