package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
)

// relaySink is an SMTP relay for the test: it keeps every mail it accepts.
type relaySink struct {
	mu   sync.Mutex
	got  [][]byte
	addr string
	in   chan struct{}
}

func newRelaySink(t *testing.T) *relaySink {
	t.Helper()
	s := &relaySink{in: make(chan struct{}, 10)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{s: s}, nil }))
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return s
}

type relaySession struct{ s *relaySink }

func (r *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (r *relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (r *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	r.s.mu.Lock()
	r.s.got = append(r.s.got, b)
	r.s.mu.Unlock()
	r.s.in <- struct{}{}
	return nil
}
func (r *relaySession) Reset()        {}
func (r *relaySession) Logout() error { return nil }

// A customer mails a file in: the desk lists it on the message like any
// upload and downloads the same bytes. The agent replies with an uploaded
// file: the mail the relay receives carries it (name and bytes), and the
// reply lists it once.
func TestEmailAttachmentsBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("runs SMTP servers")
	}
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fx := newAccountDB(t, "Mail Co", "mail.test", 10)
	dbURL, db, store, acct := fx.url, fx.db, fx.store, fx.acct
	if _, err := db.Exec(ctx, `INSERT INTO email_mailboxes (account_id, address, display_name) VALUES ($1, 'support@mail.test', 'Support')`, acct.ID); err != nil {
		t.Fatal(err)
	}
	token := fx.token(t, "desk", agentdesk.RoleAdmin)

	relay := newRelaySink(t)
	smtpAddr := freeAddr(t)
	base := serveInProcess(t, dbURL, store, channelConfig{disableRouting: true, smtpAddr: smtpAddr, smtpHostname: "mail.test",
		emailSecret: strings.Repeat("k", 32), relay: relayFlags{addr: relay.addr, security: "none"}}, nil, nil)
	addr := strings.TrimPrefix(base, "http://")
	call := func(method, path, ctype string, body []byte) (int, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b, res.Header
	}

	// In: a mail with a PDF.
	invoice := []byte("%PDF-1.4 invoice 4711\n%%EOF\n")
	var in bytes.Buffer
	fmt.Fprintf(&in, "From: Carla <carla@customer.test>\r\nTo: support@mail.test\r\nSubject: Invoice wrong\r\nMessage-ID: <in-1@customer.test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\n"+
		"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n",
		b64(invoice))
	sc, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("carla@customer.test", []string{"support@mail.test"}, bytes.NewReader(in.Bytes())); err != nil {
		t.Fatalf("send inbound mail: %v", err)
	}
	sc.Quit() //nolint:errcheck
	var ticketID int64
	if err := db.QueryRow(ctx, `SELECT ticket_id FROM messages WHERE account_id = $1 ORDER BY id LIMIT 1`, acct.ID).Scan(&ticketID); err != nil {
		t.Fatal(err)
	}
	type msgList struct {
		Items []agentdesk.Message `json:"items"`
	}
	var l msgList
	status, body, _ := call("GET", fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID), "", nil)
	if err := json.Unmarshal(body, &l); err != nil || status != 200 || len(l.Items) != 1 || len(l.Items[0].Attachments) != 1 {
		t.Fatalf("inbound message: %d %s", status, body)
	}
	got := l.Items[0].Attachments[0]
	if got.Filename != "invoice.pdf" || got.ContentType != "application/pdf" || got.Size != int64(len(invoice)) {
		t.Errorf("inbound attachment %+v", got)
	}
	if status, body, _ := call("GET", got.URL, "", nil); status != 200 || !bytes.Equal(body, invoice) {
		t.Errorf("inbound content: %d %q", status, body)
	}

	// A desk with the ticket open sees the files on the email channel's
	// events too.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/supervisor", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	stream := fmt.Sprintf("ticket:%d", ticketID)
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r1", "data": map[string]any{"streams": []map[string]any{{"stream": stream}}}}) //nolint:errcheck
	next := func(want string) []any {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck
		for {
			var f struct {
				Type   string         `json:"type"`
				Stream string         `json:"stream"`
				Data   map[string]any `json:"data"`
			}
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if f.Type == want && (f.Stream == stream || f.Stream == "") {
				atts, _ := f.Data["attachments"].([]any)
				return atts
			}
		}
	}
	next("subscribed")

	// Out: the agent uploads a file and replies with it.
	label := []byte("return label 0815\n")
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "return label.txt")
	fw.Write(label) //nolint:errcheck
	mw.Close()
	status, body, _ = call("POST", "/api/v1/attachments", mw.FormDataContentType(), form.Bytes())
	var up agentdesk.Attachment
	if err := json.Unmarshal(body, &up); err != nil || status != 201 {
		t.Fatalf("upload: %d %s", status, body)
	}
	reply, _ := json.Marshal(map[string]any{"direction": "out", "body": "Here is your label.", "attachment_ids": []int64{up.ID}})
	status, body, _ = call("POST", fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID), "application/json", reply)
	var sent agentdesk.Message
	if err := json.Unmarshal(body, &sent); err != nil || status != 201 {
		t.Fatalf("reply: %d %s", status, body)
	}
	if len(sent.Attachments) != 1 || sent.Attachments[0].ID != up.ID || sent.Attachments[0].Filename != "return label.txt" {
		t.Errorf("reply attachments %+v", sent.Attachments)
	}
	if atts := next("message.created"); len(atts) != 1 {
		t.Errorf("the reply's message.created carries %v", atts)
	}
	if atts := next("message.updated"); len(atts) != 1 {
		t.Errorf("the reply's message.updated (delivery) carries %v", atts)
	}
	select {
	case <-relay.in:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay received no mail")
	}
	relay.mu.Lock()
	raw := relay.got[0]
	relay.mu.Unlock()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			data, _ := io.ReadAll(p.Body)
			if name == "return label.txt" && bytes.Equal(data, label) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("the mail does not carry the file:\n%s", raw)
	}
	// The customer answers with another file: the desk gets it live.
	var in2 bytes.Buffer
	fmt.Fprintf(&in2, "From: Carla <carla@customer.test>\r\nTo: support@mail.test\r\nSubject: Re: Invoice wrong\r\nMessage-ID: <in-2@customer.test>\r\nIn-Reply-To: <in-1@customer.test>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b2\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nPhoto.\r\n--b2\r\n"+
		"Content-Type: image/png\r\nContent-Disposition: attachment; filename=\"box.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b2--\r\n",
		b64([]byte("\x89PNG\r\n\x1a\nbox")))
	sc, err = smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("carla@customer.test", []string{"support@mail.test"}, bytes.NewReader(in2.Bytes())); err != nil {
		t.Fatalf("second inbound mail: %v", err)
	}
	sc.Quit() //nolint:errcheck
	if atts := next("message.created"); len(atts) != 1 || atts[0].(map[string]any)["filename"] != "box.png" {
		t.Errorf("the customer's second mail on the desk: %v", atts)
	}

	// Listed once (not again as the mail's own attachment), and a second
	// reply cannot take the same file.
	status, body, _ = call("GET", fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID), "", nil)
	l = msgList{}
	json.Unmarshal(body, &l) //nolint:errcheck
	if len(l.Items) != 3 || len(l.Items[1].Attachments) != 1 || len(l.Items[2].Attachments) != 1 {
		t.Errorf("after the reply: %d %s", status, body)
	}
	status, body, _ = call("POST", fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID), "application/json", reply)
	if status != 422 || !strings.Contains(string(body), `"field":"attachment_ids"`) {
		t.Errorf("second reply with the same file: %d %s", status, body)
	}
	var n int
	db.QueryRow(ctx, `SELECT count(*) FROM messages WHERE account_id = $1`, acct.ID).Scan(&n) //nolint:errcheck
	if n != 3 {
		t.Errorf("%d messages after a refused reply", n)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
