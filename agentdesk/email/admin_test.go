package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"agentdesk/agentdesk"
)

// imapServer is go-imap's in-memory server for user support with password
// pass; with cfg set it speaks implicit TLS with that certificate.
func imapServer(t *testing.T, pass string, cfg *tls.Config) (host string, port int) {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("support", pass)
	user.Create("INBOX", nil)
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		InsecureAuth: true,
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		Logger:       nopLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h, p, _ := net.SplitHostPort(addr)
	port, _ = strconv.Atoi(p)
	return h, port
}

// deliverIMAP puts a mail into the test server's INBOX as its MTA would;
// roots verify a TLS server.
func deliverIMAP(t *testing.T, host string, port int, pass string, roots *x509.CertPool, raw string) {
	t.Helper()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var c *imapclient.Client
	var err error
	if roots != nil {
		c, err = imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: roots}})
	} else {
		c, err = imapclient.DialInsecure(addr, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("support", pass).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMail(t, c, raw)
}

func startPoller(t *testing.T, e *env) *Poller {
	t.Helper()
	p := NewPoller(e.srv.Ingester(), quietLog())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop poller: %v", err)
		}
	})
	return p
}

func adminActor(e *env) agentdesk.Actor {
	return agentdesk.Actor{AccountID: e.acct, Role: agentdesk.RoleAdmin}
}

// Accounts added, changed (password, host) and removed through Admin take
// effect on a running poller without a restart. The poll interval is an
// hour: only the change signal can make it look.
func TestPollerFollowsAdminChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.IMAPPoll, c.IMAPIdle = time.Hour, time.Hour })
	p := startPoller(t, e)
	adm := NewAdmin(e.db, AdminConfig{Secret: testSecret, Changed: p.Reload})
	ctx := context.Background()
	host, port := imapServer(t, "imap-pass", nil)

	acc, err := adm.CreateIMAPAccount(ctx, adminActor(e), &IMAPAccount{MailboxID: e.mailbox.ID, Host: host, Port: port, Security: "insecure", Username: "support", Password: "wrong"}, true)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCount(fmt.Sprintf(`SELECT count(*) FROM email_imap_accounts WHERE id = %d AND last_error LIKE 'login:%%'`, acc.ID), 1)

	// The right password: the poller reconnects and fetches.
	deliverIMAP(t, host, port, "imap-pass", nil, simpleMail("adm-1@example.net", "jane@example.net", "After the fix", "x"))
	if _, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(a *IMAPAccount, _ *bool) error { a.Password = "imap-pass"; return nil }); err != nil {
		t.Fatal(err)
	}
	e.waitCount(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'adm-1@example.net'`, 1)

	// Moved to another server.
	host2, port2 := imapServer(t, "other-pass", nil)
	deliverIMAP(t, host2, port2, "other-pass", nil, simpleMail("adm-2@example.net", "jane@example.net", "On the new server", "x"))
	if _, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(a *IMAPAccount, _ *bool) error {
		a.Port, a.Password = port2, "other-pass"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.waitCount(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'adm-2@example.net'`, 1)

	// Disabled, then deleted: nothing is fetched any more.
	if _, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(_ *IMAPAccount, enabled *bool) error { *enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, p, 0)
	if err := adm.DeleteIMAPAccount(ctx, adminActor(e), acc.ID); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM email_imap_accounts`); n != 0 {
		t.Errorf("%d accounts after delete", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action LIKE 'email_imap_account.%'`); n != 5 {
		t.Errorf("%d audit entries, want 5", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE details::text ~ '(imap-pass|other-pass|wrong)'`); n != 0 {
		t.Error("a password reached the audit log")
	}
}

func waitRunning(t *testing.T, p *Poller, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.running)
		p.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accounts polled, want %d", n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Support addresses added and removed through Admin are accepted and
// refused by the running SMTP server at once.
func TestSMTPFollowsMailboxChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm := NewAdmin(e.db, AdminConfig{})
	ctx := context.Background()
	mail := simpleMail("new-addr@example.net", "jane@example.net", "Hello sales", "x")
	if err := e.send("jane@example.net", []string{"sales@example.com"}, mail); smtpCode(err) != 550 {
		t.Fatalf("before: %v", err)
	}
	mb := &Mailbox{Address: "Sales@Example.com", QueueID: 0}
	if err := adm.CreateMailbox(ctx, adminActor(e), mb); err != nil {
		t.Fatal(err)
	}
	if mb.Address != "sales@example.com" {
		t.Errorf("address stored as %q", mb.Address)
	}
	if err := e.send("jane@example.net", []string{"sales@example.com"}, mail); err != nil {
		t.Fatalf("after create: %v", err)
	}
	if err := adm.DeleteMailbox(ctx, adminActor(e), mb.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.send("jane@example.net", []string{"sales@example.com"}, simpleMail("new-addr-2@example.net", "jane@example.net", "Again", "x")); smtpCode(err) != 550 {
		t.Fatalf("after delete: %v", err)
	}
	// A reply on the ticket the removed address opened goes out from the
	// account's remaining address.
	tkt := e.ticketOf("new-addr@example.net")
	if _, err := e.sender().QueueReply(ctx, agentdesk.Actor{AccountID: e.acct}, tkt, "answer", ""); err != nil {
		t.Fatal(err)
	}
	var from string
	e.db.QueryRow(ctx, `SELECT mail_from FROM email_deliveries WHERE ticket_id = $1`, tkt).Scan(&from)
	if from != "support@example.com" {
		t.Errorf("reply sent from %q", from)
	}
}

func TestAdminValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	adm := NewAdmin(e.db, AdminConfig{Secret: testSecret})
	var other int64
	e.db.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ('Other') RETURNING id`).Scan(&other)
	var otherTeam int64
	e.db.QueryRow(ctx, `INSERT INTO teams (account_id, name) VALUES ($1, 'Theirs') RETURNING id`, other).Scan(&otherTeam)
	mailboxes := []struct {
		name  string
		m     Mailbox
		kind  agentdesk.Kind
		field string
	}{
		{"bad address", Mailbox{Address: "not an address"}, agentdesk.Invalid, "address"},
		{"plus address", Mailbox{Address: "help+x@example.com"}, agentdesk.Invalid, "address"},
		{"unknown queue", Mailbox{Address: "q@example.com", QueueID: 999}, agentdesk.Invalid, "queue_id"},
		{"other account's team", Mailbox{Address: "t@example.com", TeamID: &otherTeam}, agentdesk.Invalid, "team_id"},
		{"priority", Mailbox{Address: "p@example.com", Priority: "asap"}, agentdesk.Invalid, "priority"},
		{"closed reply", Mailbox{Address: "c@example.com", ClosedReply: "ignore"}, agentdesk.Invalid, "closed_reply"},
		{"duplicate", Mailbox{Address: "SUPPORT@example.com"}, agentdesk.Conflict, "address"},
	}
	for _, tc := range mailboxes {
		err := adm.CreateMailbox(ctx, adminActor(e), &tc.m)
		var de *agentdesk.Error
		if agentdesk.ErrorKind(err) != tc.kind || !errors.As(err, &de) || de.Field != tc.field {
			t.Errorf("%s: %v, want %s on %s", tc.name, err, tc.kind, tc.field)
		}
	}
	pem := string(pemOf(t))
	accounts := []struct {
		name  string
		a     IMAPAccount
		field string
	}{
		{"host with a slash", IMAPAccount{Host: "imap/x", Username: "u", Password: "p"}, "host"},
		{"host with a space", IMAPAccount{Host: "imap example.com", Username: "u", Password: "p"}, "host"},
		{"port", IMAPAccount{Host: "imap.example.com", Port: 70000, Username: "u", Password: "p"}, "port"},
		{"port in host", IMAPAccount{Host: "imap.example.com:x", Username: "u", Password: "p"}, "host"},
		{"tls mode", IMAPAccount{Host: "imap.example.com", Security: "ssl3", Username: "u", Password: "p"}, "security"},
		{"no username", IMAPAccount{Host: "imap.example.com", Password: "p"}, "username"},
		{"no password", IMAPAccount{Host: "imap.example.com", Username: "u"}, "password"},
		{"same folders", IMAPAccount{Host: "imap.example.com", Username: "u", Password: "p", Folder: "X", ProcessedFolder: "X"}, "processed_folder"},
		{"not a CA", IMAPAccount{Host: "imap.example.com", Username: "u", Password: "p", CAPEM: "hello"}, "ca_pem"},
		{"CA without TLS", IMAPAccount{Host: "imap.example.com", Security: "insecure", Username: "u", Password: "p", CAPEM: pem}, "ca_pem"},
		{"unknown mailbox", IMAPAccount{MailboxID: 12345, Host: "imap.example.com", Username: "u", Password: "p"}, "mailbox_id"},
	}
	for _, tc := range accounts {
		if tc.a.MailboxID == 0 {
			tc.a.MailboxID = e.mailbox.ID
		}
		_, err := adm.CreateIMAPAccount(ctx, adminActor(e), &tc.a, true)
		var de *agentdesk.Error
		if agentdesk.ErrorKind(err) != agentdesk.Invalid || !errors.As(err, &de) || de.Field != tc.field {
			t.Errorf("%s: %v, want invalid %s", tc.name, err, tc.field)
		}
	}
	ok := IMAPAccount{MailboxID: e.mailbox.ID, Host: "imap.example.com:1993", Security: "tls", Username: "u", Password: "p", CAPEM: pem}
	v, err := adm.CreateIMAPAccount(ctx, adminActor(e), &ok, true)
	if err != nil {
		t.Fatal(err)
	}
	if v.Host != "imap.example.com" || v.Port != 1993 || v.CAPEM == "" {
		t.Errorf("stored %+v", v)
	}
	// Without the server's secret no password can be sealed.
	noKey := NewAdmin(e.db, AdminConfig{})
	_, err = noKey.CreateIMAPAccount(ctx, adminActor(e), &IMAPAccount{MailboxID: e.mailbox.ID, Host: "imap.example.com", Username: "u", Password: "p"}, true)
	if agentdesk.ErrorKind(err) != agentdesk.Invalid || !strings.Contains(err.Error(), "secret") {
		t.Errorf("without a key: %v", err)
	}
	// Another account sees none of it.
	if _, err := adm.IMAPAccount(ctx, other, v.ID); agentdesk.ErrorKind(err) != agentdesk.NotFound {
		t.Errorf("another account read the IMAP account: %v", err)
	}
	if err := adm.DeleteMailbox(ctx, agentdesk.Actor{AccountID: other, Role: agentdesk.RoleAdmin}, e.mailbox.ID); agentdesk.ErrorKind(err) != agentdesk.NotFound {
		t.Errorf("another account deleted the mailbox: %v", err)
	}
}

func pemOf(t *testing.T) []byte {
	cfg, _ := selfSignedTLS(t)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cfg.Certificates[0].Certificate[0]})
}

// An IMAP server with a certificate from a private CA is refused without
// the CA and polled with it (the account's bundle, or the server's).
func TestIMAPCustomCA(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		serverCA bool
	}{{"account CA", false}, {"server CA file", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, pool := selfSignedTLS(t)
			caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cfg.Certificates[0].Certificate[0]}))
			host, port := imapServer(t, "imap-pass", cfg)
			deliverIMAP(t, host, port, "imap-pass", pool, simpleMail("tls-1@example.net", "jane@example.net", "Over TLS", "x"))
			e := newEnv(t, func(c *Config, _ *Mailbox) {
				c.IMAPPoll, c.IMAPIdle = time.Hour, time.Hour
				if tc.serverCA {
					c.IMAPRootCAs = pool
				}
			})
			p := startPoller(t, e)
			adm := NewAdmin(e.db, AdminConfig{Secret: testSecret, Changed: p.Reload})
			ctx := context.Background()
			acc, err := adm.CreateIMAPAccount(ctx, adminActor(e), &IMAPAccount{MailboxID: e.mailbox.ID, Host: host, Port: port, Security: "tls", Username: "support", Password: "imap-pass"}, true)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.serverCA {
				e.waitCount(fmt.Sprintf(`SELECT count(*) FROM email_imap_accounts WHERE id = %d AND last_error LIKE '%%certificate%%'`, acc.ID), 1)
				if n := e.count(`SELECT count(*) FROM messages`); n != 0 {
					t.Fatalf("%d messages fetched from an unverified server", n)
				}
				if _, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(a *IMAPAccount, _ *bool) error { a.CAPEM = caPEM; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			e.waitCount(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'tls-1@example.net'`, 1)
		})
	}
}
