package email

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// imapTestServer is go-imap's in-memory IMAP server on a free port, with
// the user support/imap-pass and an INBOX.
func imapTestServer(t *testing.T, caps ...imap.Cap) string {
	t.Helper()
	capSet := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	if len(caps) > 0 {
		capSet = imap.CapSet{}
		for _, c := range caps {
			capSet[c] = struct{}{}
		}
	}
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("support", "imap-pass")
	user.Create("INBOX", nil)
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		InsecureAuth: true,
		Caps:         capSet,
		Logger:       nopLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// imapUser is a second client, playing the mail server's delivery agent.
func imapUser(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("support", "imap-pass").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func appendMail(t *testing.T, c *imapclient.Client, raw string) {
	t.Helper()
	b := []byte(crlf(raw))
	cmd := c.Append("INBOX", int64(len(b)), nil)
	if _, err := cmd.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, c *imapclient.Client, folder string) uint32 {
	t.Helper()
	d, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return *d.NumMessages
}

func (e *env) waitCount(sql string, want int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := e.count(sql)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s = %d, want %d", sql, n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIMAPPollerFetchesIdlesAndMoves(t *testing.T) {
	t.Parallel()
	// Long intervals: new mail can only be noticed through IDLE.
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.IMAPIdle, c.IMAPPoll = time.Hour, time.Hour })
	addr := imapTestServer(t)
	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	user := imapUser(t, addr)
	appendMail(t, user, simpleMail("imap-1@example.net", "jane@example.net", "Via IMAP", "first"))
	appendMail(t, user, simpleMail("imap-2@example.net", "joe@example.net", "Also via IMAP", "second"))

	p := NewPoller(e.srv.Ingester(), quietLog())
	ctx := context.Background()
	acct := &IMAPAccount{MailboxID: e.mailbox.ID, Host: host, Port: portN, Security: "insecure", Username: "support", Password: "imap-pass"}
	if err := p.AddAccount(ctx, e.acct, acct); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM email_imap_accounts WHERE position('imap-pass'::bytea IN password_sealed) > 0`); n != 0 {
		t.Fatal("IMAP password stored in clear")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := p.Stop(sctx); err != nil {
			t.Error(err)
		}
	}()
	e.waitCount(`SELECT count(*) FROM messages WHERE direction = 'in'`, 2)
	if e.message("imap-1@example.net").Subject != "Via IMAP" {
		t.Error("IMAP mail stored wrongly")
	}
	waitFolders := func(inbox, processed uint32) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			i, p := count(t, user, "INBOX"), count(t, user, "Processed")
			if i == inbox && p == processed {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("INBOX %d, Processed %d; want %d, %d", i, p, inbox, processed)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFolders(0, 2)

	// New mail while the poller idles, then the same mail delivered again.
	appendMail(t, user, simpleMail("imap-3@example.net", "jane@example.net", "Re: Via IMAP", "more"))
	e.waitCount(`SELECT count(*) FROM messages WHERE direction = 'in'`, 3)
	waitFolders(0, 3)
	appendMail(t, user, simpleMail("imap-3@example.net", "jane@example.net", "Re: Via IMAP", "more"))
	waitFolders(0, 4)
	if n := e.count(`SELECT count(*) FROM messages WHERE direction = 'in'`); n != 3 {
		t.Errorf("redelivered mail stored again: %d messages", n)
	}
	if e.ticketOf("imap-3@example.net") != e.ticketOf("imap-1@example.net") {
		t.Error("IMAP reply did not thread")
	}
	var lastErr string
	e.db.QueryRow(ctx, `SELECT last_error FROM email_imap_accounts WHERE id = $1`, acct.ID).Scan(&lastErr)
	if lastErr != "" {
		t.Errorf("last_error = %q", lastErr)
	}
}

func TestIMAPBadPasswordIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.IMAPPoll = time.Hour })
	addr := imapTestServer(t)
	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	p := NewPoller(e.srv.Ingester(), quietLog())
	ctx := context.Background()
	acct := &IMAPAccount{MailboxID: e.mailbox.ID, Host: host, Port: portN, Security: "insecure", Username: "support", Password: "wrong"}
	if err := p.AddAccount(ctx, e.acct, acct); err != nil {
		t.Fatal(err)
	}
	if err := p.AddAccount(ctx, e.acct, &IMAPAccount{MailboxID: e.mailbox.ID + 99, Host: "h", Username: "u", Password: "p"}); err == nil {
		t.Error("IMAP account for an unknown mailbox accepted")
	}
	p.Start(ctx)
	defer p.Stop(ctx)
	e.waitCount(fmt.Sprintf(`SELECT count(*) FROM email_imap_accounts WHERE id = %d AND last_error LIKE 'login:%%'`, acct.ID), 1)
}

func TestIMAPPollsWithoutIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.IMAPPoll = 50 * time.Millisecond })
	addr := imapTestServer(t, imap.CapIMAP4rev1) // no IDLE, no MOVE: COPY + EXPUNGE
	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	user := imapUser(t, addr)
	p := NewPoller(e.srv.Ingester(), quietLog())
	ctx := context.Background()
	if err := p.AddAccount(ctx, e.acct, &IMAPAccount{MailboxID: e.mailbox.ID, Host: host, Port: portN, Security: "insecure", Username: "support", Password: "imap-pass", ProcessedFolder: "Done"}); err != nil {
		t.Fatal(err)
	}
	p.Start(ctx)
	defer p.Stop(ctx)
	appendMail(t, user, simpleMail("poll-1@example.net", "jane@example.net", "Polled", "x"))
	e.waitCount(`SELECT count(*) FROM messages WHERE direction = 'in'`, 1)
	deadline := time.Now().Add(20 * time.Second)
	for count(t, user, "INBOX") != 0 || count(t, user, "Done") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("INBOX %d, Done %d", count(t, user, "INBOX"), count(t, user, "Done"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
