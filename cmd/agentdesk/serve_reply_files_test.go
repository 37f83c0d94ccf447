package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"agentdesk/agentdesk"
)

// An email reply of files alone goes out: its text part names the files,
// the files are attached. A reply with neither text nor files is refused on
// body and stores nothing.
func TestEmailReplyFilesOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs SMTP servers")
	}
	t.Parallel()
	relay := newRelaySink(t)
	smtpAddr := freeAddr(t)
	s := startTestServe(t, channelConfig{smtpAddr: smtpAddr, smtpHostname: "mail.test", emailSecret: strings.Repeat("k", 32),
		relay: relayFlags{addr: relay.addr, security: "none"}}, func(s *testServe) {
		if _, err := s.db.Exec(context.Background(), `INSERT INTO email_mailboxes (account_id, address, display_name) VALUES ($1, 'support@mail.test', 'Support')`, s.acct); err != nil {
			t.Fatal(err)
		}
	})
	sc, err := smtp.Dial(smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	in := "From: Carla <carla@customer.test>\r\nTo: support@mail.test\r\nSubject: Need the label\r\nMessage-ID: <label-1@customer.test>\r\n\r\nPlease send the label.\r\n"
	if err := sc.SendMail("carla@customer.test", []string{"support@mail.test"}, strings.NewReader(in)); err != nil {
		t.Fatalf("send inbound mail: %v", err)
	}
	sc.Quit() //nolint:errcheck
	var ticketID int64
	if err := s.db.QueryRow(context.Background(), `SELECT ticket_id FROM messages WHERE account_id = $1 ORDER BY id LIMIT 1`, s.acct).Scan(&ticketID); err != nil {
		t.Fatal(err)
	}
	msgs := fmt.Sprintf("/api/v1/tickets/%d/messages", ticketID)
	count := func() (n int) {
		s.db.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE account_id = $1`, s.acct).Scan(&n) //nolint:errcheck
		return n
	}

	before := count()
	status, body := s.callJSON(t, "POST", msgs, map[string]any{"direction": "out", "body": "  "})
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"field":"body"`) || count() != before {
		t.Errorf("empty reply: %d %s, messages %d → %d", status, body, before, count())
	}

	label, photo := []byte("return label 0815\n"), []byte("\x89PNG\r\n\x1a\nfake")
	l, p := s.upload(t, "label.txt", label), s.upload(t, "parcel.png", photo)
	status, body = s.callJSON(t, "POST", msgs, map[string]any{"direction": "out", "body": "", "attachment_ids": []int64{l.ID, p.ID}})
	var sent agentdesk.Message
	if err := json.Unmarshal(body, &sent); err != nil || status != http.StatusCreated {
		t.Fatalf("files-only reply: %d %s", status, body)
	}
	if len(sent.Attachments) != 2 || sent.Body != "Attached: label.txt, parcel.png" {
		t.Errorf("stored reply %q %+v", sent.Body, sent.Attachments)
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
	var text string
	files := map[string][]byte{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part.Body)
		switch h := part.Header.(type) {
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			files[name] = b
		case *mail.InlineHeader:
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				text = string(b)
			}
		}
	}
	if strings.TrimSpace(text) != "Attached: label.txt, parcel.png" {
		t.Errorf("text part %q", text)
	}
	if !bytes.Equal(files["label.txt"], label) || !bytes.Equal(files["parcel.png"], photo) {
		t.Errorf("mailed files %v", files)
	}
}
