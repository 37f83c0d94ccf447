package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"golang.org/x/text/encoding/charmap"

	"agentdesk/agentdesk"
)

func simpleMail(id, from, subject, body string) string {
	return fmt.Sprintf("From: %s\nTo: Acme Support <support@example.com>\nSubject: %s\nMessage-ID: <%s>\nDate: Mon, 3 Mar 2025 10:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n%s\n", from, subject, id, body)
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestSMTPStoresMailAsTicketAndTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSend(simpleMail("first@example.net", `"Jane Doe" <Jane@Example.net>`, "Printer on fire", "It is on fire.\n\n-- \nJane"))
	m := e.message("first@example.net")
	if m.Direction != "in" || m.Subject != "Printer on fire" || !strings.HasPrefix(m.Body, "It is on fire.") {
		t.Errorf("message = %+v", m)
	}
	em := m.Meta["email"].(map[string]any)
	if em["visible"] != "It is on fire." || len(em["folds"].([]any)) != 1 {
		t.Errorf("meta.email = %v", em)
	}
	var subject, status, channel, identity, name string
	err := e.db.QueryRow(context.Background(), `
SELECT t.subject, t.status, t.channel, i.value, c.name FROM tickets t
JOIN customers c ON c.id = t.customer_id JOIN identities i ON i.customer_id = c.id
WHERE t.id = $1`, m.TicketID).Scan(&subject, &status, &channel, &identity, &name)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Printer on fire" || status != "new" || channel != "email" || identity != "jane@example.net" || name != "Jane Doe" {
		t.Errorf("ticket %q %q %q, customer %q %q", subject, status, channel, identity, name)
	}
	if n := e.count(`SELECT count(*) FROM test_tasks WHERE ticket_id = $1 AND queue_id = 7`, m.TicketID); n != 1 {
		t.Errorf("tasks = %d, want 1", n)
	}
	// A second mail from the same address is the same customer.
	e.mustSend(simpleMail("second@example.net", "jane@example.net", "Another thing", "Hi"))
	if c := e.message("second@example.net").CustomerID; c != m.CustomerID {
		t.Errorf("customer %d, want %d", c, m.CustomerID)
	}
}

func TestSMTPRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.MaxMessageBytes = 256 << 10 })
	e.mustSend(simpleMail("before@example.net", "a@example.net", "existing", "x"))
	before := e.snapshot()
	huge := simpleMail("huge@example.net", "a@example.net", "huge", strings.Repeat("0123456789abcdef\n", 20000))
	tests := []struct {
		name     string
		from     string
		to       []string
		raw      string
		code     int
		contains string
	}{
		{"unknown recipient", "a@example.net", []string{"sales@example.com"}, simpleMail("u@x", "a@example.net", "s", "b"), 550, "not a support address"},
		{"unknown domain", "a@example.net", []string{"support@other.example"}, simpleMail("u2@x", "a@example.net", "s", "b"), 550, "not a support address"},
		{"too large", "a@example.net", []string{"support@example.com"}, huge, 552, "size"},
		{"header unparseable", "a@example.net", []string{"support@example.com"}, "this is not a mail at all\n", 550, "header could not be parsed"},
		{"no sender at all", "", []string{"support@example.com"}, "Subject: who am I\nMessage-ID: <nobody@x>\n\nbody\n", 550, "no valid sender"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.send(tc.from, tc.to, tc.raw)
			if smtpCode(err) != tc.code || !strings.Contains(strings.ToLower(err.Error()), tc.contains) {
				t.Fatalf("got %v, want %d containing %q", err, tc.code, tc.contains)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("store changed:\n%s\n%s", before, after)
			}
		})
	}
}

func TestSMTPSizeAnnouncedAndRefusedBeforeData(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := smtp.Dial(e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client"); err != nil {
		t.Fatal(err)
	}
	if n, ok := c.MaxMessageSize(); !ok || n != 25<<20 {
		t.Fatalf("SIZE = %d %v, want 25 MB", n, ok)
	}
	err = c.Mail("a@example.net", &smtp.MailOptions{Size: 30 << 20})
	if smtpCode(err) != 552 {
		t.Fatalf("MAIL FROM SIZE=30MB: %v, want 552", err)
	}
	// A client that does not announce the size is cut off at the limit.
	before := e.snapshot()
	att := strings.Repeat(strings.Repeat("A", 76)+"\n", (26<<20)/77)
	huge := "From: a@example.net\nTo: support@example.com\nSubject: huge attachment\nMessage-ID: <huge26@x>\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + att + "--b--\n"
	if err := e.send("a@example.net", []string{"support@example.com"}, huge); smtpCode(err) != 552 {
		t.Fatalf("26 MB mail: %v, want 552", err)
	}
	if e.snapshot() != before {
		t.Error("a refused huge mail changed the store")
	}
}

func TestSMTPDuplicateDeliveryIsOneMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	raw := simpleMail("dup@example.net", "a@example.net", "twice", "same mail")
	e.mustSend(raw)
	before := e.snapshot()
	e.mustSend(raw)
	// A redelivery by another MTA adds its own Received line: still the same mail.
	e.mustSend("Received: from mx2.example.net\n" + raw)
	if after := e.snapshot(); after != before {
		t.Errorf("redelivery changed the store:\n%s\n%s", before, after)
	}
	// Concurrent deliveries of one new Message-ID also collapse into one.
	raw2 := simpleMail("dup2@example.net", "b@example.net", "racing", "at once")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.send("b@example.net", []string{"support@example.com"}, raw2)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.count(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'dup2@example.net'`); n != 1 {
		t.Errorf("%d rows for one Message-ID", n)
	}
	if n := e.count(`SELECT count(*) FROM customers c JOIN identities i ON i.customer_id = c.id WHERE i.value = 'b@example.net'`); n != 1 {
		t.Errorf("%d customers for one address", n)
	}
	if n := e.count(`SELECT count(*) FROM customers`); n != 2 {
		t.Errorf("%d customers, want 2 (no orphans from the race)", n)
	}
}

func TestSMTPMissingMessageIDMalformedAnd8bit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	noID := "From: a@example.net\nTo: support@example.com\nSubject: no id\n\nhello\n"
	e.mustSend(noID)
	before := e.snapshot()
	e.mustSend(noID)
	if after := e.snapshot(); after != before {
		t.Errorf("identical mail without Message-ID stored twice")
	}
	var body string
	e.db.QueryRow(context.Background(), `SELECT body FROM messages WHERE subject = 'no id'`).Scan(&body)
	if body != "hello" {
		t.Errorf("body = %q", body)
	}

	broken := "From: b@example.net\nTo: support@example.com\nSubject: broken\nMessage-ID: <broken@x>\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nreadable part\n--zz\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!!\n"
	e.mustSend(broken)
	m := e.message("broken@x")
	if !strings.HasPrefix(m.Body, "readable part") || m.Meta["email"].(map[string]any)["warnings"] == nil {
		t.Errorf("broken mail stored as %q %v", m.Body, m.Meta)
	}
	var rawLen int
	e.db.QueryRow(context.Background(), `SELECT length(b.bytes) FROM email_messages e JOIN email_blobs b ON b.sha256 = e.raw_sha256 WHERE e.rfc_message_id = 'broken@x'`).Scan(&rawLen)
	if rawLen != len(crlf(broken)) {
		t.Errorf("raw kept %d bytes, want %d", rawLen, len(crlf(broken)))
	}

	// A body over the timeline's limit is cut for display; the raw mail keeps it all.
	long := strings.TrimSpace(strings.Repeat(strings.Repeat("ä", 39)+"\n", 5000)) // 400 KB of UTF-8
	e.mustSend("From: d@example.net\nTo: support@example.com\nSubject: long\nMessage-ID: <long@x>\nContent-Type: text/plain; charset=utf-8\n\n" + long + "\n")
	lm := e.message("long@x")
	if len(lm.Body) > agentdesk.MaxMessageBody || !strings.HasPrefix(long, lm.Body) || len(lm.Body) < agentdesk.MaxMessageBody-3 {
		t.Errorf("long body stored with %d bytes", len(lm.Body))
	}

	// An unwrapped 20,000-character HTML line, as some web mailers send.
	e.mustSend("From: w@example.net\nTo: support@example.com\nSubject: wide\nMessage-ID: <wide@x>\nContent-Type: text/html\n\n<p>" + strings.Repeat("wide ", 4000) + "</p>\n")
	if b := e.message("wide@x").Body; len(b) < 19000 {
		t.Errorf("long line stored as %d bytes", len(b))
	}

	latin1, _ := charmap.ISO8859_1.NewEncoder().String("Größe: Rückgabe")
	e.mustSend("From: c@example.net\nTo: support@example.com\nSubject: " + latin1 + "\nMessage-ID: <8bit@x>\n\nbody\n")
	if s := e.message("8bit@x").Subject; s != "Größe: Rückgabe" {
		t.Errorf("8-bit subject = %q", s)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	t.Parallel()
	srvTLS, pool := selfSignedTLS(t)
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.TLS = srvTLS })
	c, err := smtp.DialStartTLS(e.srv.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("not TLS after STARTTLS")
	}
	if err := c.SendMail("a@example.net", []string{"support@example.com"}, strings.NewReader(crlf(simpleMail("tls@x", "a@example.net", "over tls", "secret")))); err != nil {
		t.Fatal(err)
	}
	if e.message("tls@x").Subject != "over tls" {
		t.Error("mail over STARTTLS not stored")
	}
}

func TestSwaks(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Skip("swaks not installed (scripts/deps.sh test installs it)")
	}
	e := newEnv(t)
	out, err := exec.Command("swaks", "--server", e.srv.Addr(), "--from", "swaks@example.net", "--to", "support@example.com",
		"--header", "Subject: Sent by swaks", "--header", "Message-Id: <swaks-1@example.net>", "--body", "Hello from swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	m := e.message("swaks-1@example.net")
	if m.Subject != "Sent by swaks" || m.Body != "Hello from swaks" {
		t.Errorf("stored %q %q", m.Subject, m.Body)
	}
	before := e.snapshot()
	out, err = exec.Command("swaks", "--server", e.srv.Addr(), "--from", "swaks@example.net", "--to", "nobody@example.com", "--body", "x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "550 5.1.1") || !strings.Contains(string(out), "not a support address") {
		t.Errorf("swaks to unknown recipient: %v\n%s", err, out)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused mail changed the store")
	}
}

func TestSwaksStartTLSAndAttachment(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Skip("swaks not installed (scripts/deps.sh test installs it)")
	}
	srvTLS, _ := selfSignedTLS(t)
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.TLS = srvTLS })
	dir := t.TempDir()
	file := dir + "/report.csv"
	if err := os.WriteFile(file, []byte("order,status\n1001,late\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("swaks", "--server", e.srv.Addr(), "--tls", "--from", "swaks@example.net", "--to", "support@example.com",
		"--header", "Subject: With attachment", "--header", "Message-Id: <swaks-tls@example.net>",
		"--attach-type", "text/csv", "--attach-name", "report.csv", "--attach", "@"+file, "--body", "See attached").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "STARTTLS") {
		t.Fatalf("swaks --tls: %v\n%s", err, out)
	}
	m := e.message("swaks-tls@example.net")
	atts := m.Meta["email"].(map[string]any)["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments = %v", atts)
	}
	a := atts[0].(map[string]any)
	b, err := Blob(context.Background(), e.db, e.acct, a["sha256"].(string))
	if err != nil || string(b) != "order,status\n1001,late\n" || a["filename"] != "report.csv" {
		t.Errorf("attachment %v read back as %q, %v", a, b, err)
	}
	if _, err := Blob(context.Background(), e.db, e.acct+1, a["sha256"].(string)); agentdesk.ErrorKind(err) != agentdesk.NotFound {
		t.Errorf("another account read the attachment: %v", err)
	}
}
