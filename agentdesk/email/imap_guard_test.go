package email

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"agentdesk/agentdesk"
)

// imapRow is everything stored of an IMAP account, the sealed password
// included, to show a refused change left it alone.
func (e *env) imapRow(id int64) string {
	e.t.Helper()
	var s string
	if err := e.db.QueryRow(context.Background(), `SELECT row_to_json(a)::text FROM email_imap_accounts a WHERE id = $1`, id).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// countingListener is a TCP server that only counts the connections it
// gets: the place an admin would point an account at to catch its password.
func countingListener(t *testing.T) (port int, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, conns
}

// The stored password goes only to the server and user it was given for: a
// change of host, port, security or username without a new password is
// refused naming password, changes nothing, and the running poller stays
// on the old server; with a new password it is accepted.
func TestIMAPPasswordStaysWithItsServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) { c.IMAPPoll, c.IMAPIdle = time.Hour, time.Hour })
	p := startPoller(t, e)
	adm := NewAdmin(e.db, AdminConfig{Secret: testSecret, Changed: p.Reload})
	ctx := context.Background()
	host, port := imapServer(t, "imap-pass", nil)
	acc, err := adm.CreateIMAPAccount(ctx, adminActor(e), &IMAPAccount{MailboxID: e.mailbox.ID, Host: host, Port: port, Security: "insecure", Username: "support", Password: "imap-pass"}, true)
	if err != nil {
		t.Fatal(err)
	}
	deliverIMAP(t, host, port, "imap-pass", nil, simpleMail("guard-1@example.net", "jane@example.net", "First", "x"))
	e.waitCount(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'guard-1@example.net'`, 1)

	trap, trapped := countingListener(t)
	before := e.imapRow(acc.ID)
	audits := e.count(`SELECT count(*) FROM audit_log`)
	for _, tc := range []struct {
		name   string
		change func(*IMAPAccount)
	}{
		{"host", func(a *IMAPAccount) { a.Host = "localhost" }},
		{"host with port", func(a *IMAPAccount) { a.Host, a.Port = "127.0.0.1:"+strconv.Itoa(trap), 0 }},
		{"port", func(a *IMAPAccount) { a.Port = trap }},
		{"security", func(a *IMAPAccount) { a.Security = "starttls" }},
		{"username", func(a *IMAPAccount) { a.Username = "someone-else" }},
	} {
		_, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(a *IMAPAccount, _ *bool) error { tc.change(a); return nil })
		var de *agentdesk.Error
		if !errors.As(err, &de) || de.Kind != agentdesk.Invalid || de.Field != "password" || de.Message != "a new password is required when the server or user changes" {
			t.Errorf("%s without a password: %v", tc.name, err)
		}
	}
	if after := e.imapRow(acc.ID); after != before {
		t.Errorf("a refused change was stored:\n%s\n%s", before, after)
	}
	if n := e.count(`SELECT count(*) FROM audit_log`); n != audits {
		t.Errorf("%d audit entries for refused changes", n-audits)
	}
	// The poller still reads the old server (it was never told to reload).
	deliverIMAP(t, host, port, "imap-pass", nil, simpleMail("guard-2@example.net", "jane@example.net", "Second", "x"))
	e.waitCount(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'guard-2@example.net'`, 1)
	if n := trapped.Load(); n != 0 {
		t.Errorf("the poller connected %d times to the address a refused change named", n)
	}

	// Changes that keep server and user need no password.
	if _, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(a *IMAPAccount, _ *bool) error {
		a.ProcessedFolder = "Done"
		return nil
	}); err != nil {
		t.Errorf("folder change: %v", err)
	}
	// With a new password the account may move.
	host2, port2 := imapServer(t, "other-pass", nil)
	deliverIMAP(t, host2, port2, "other-pass", nil, simpleMail("guard-3@example.net", "jane@example.net", "Moved", "x"))
	if _, err := adm.UpdateIMAPAccount(ctx, adminActor(e), acc.ID, func(a *IMAPAccount, _ *bool) error {
		a.Host, a.Port, a.Password = host2, port2, "other-pass"
		return nil
	}); err != nil {
		t.Fatalf("move with a password: %v", err)
	}
	e.waitCount(`SELECT count(*) FROM email_messages WHERE rfc_message_id = 'guard-3@example.net'`, 1)
}

// Without Config.IMAPAllowPrivate the poller does not connect to loopback
// or private addresses, whether given as an address or as a name resolving
// to one; last_error says why without naming the address.
func TestIMAPPrivateHostsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Mailbox) {
		c.IMAPPoll, c.IMAPIdle = time.Hour, time.Hour
		c.IMAPAllowPrivate = false
	})
	p := startPoller(t, e)
	adm := NewAdmin(e.db, AdminConfig{Secret: testSecret, Changed: p.Reload})
	ctx := context.Background()
	port, conns := countingListener(t)
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]"} {
		a := &IMAPAccount{MailboxID: e.mailbox.ID, Host: host + ":" + strconv.Itoa(port), Security: "insecure", Username: "support", Password: "pw"}
		if host == "localhost" {
			a.Host, a.Port = host, port
		}
		acc, err := adm.CreateIMAPAccount(ctx, adminActor(e), a, true)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		e.waitCount(fmt.Sprintf(`SELECT count(*) FROM email_imap_accounts WHERE id = %d AND last_error = '%s'`, acc.ID, errPrivateIMAPHost.Error()), 1)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to a loopback IMAP host", n)
	}
}

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"127.0.0.1", false}, {"127.3.4.5", false}, {"::1", false}, {"10.1.2.3", false}, {"172.16.0.1", false},
		{"192.168.1.1", false}, {"169.254.169.254", false}, {"fe80::1", false}, {"fd00::1", false},
		{"100.64.0.1", false}, {"0.0.0.0", false}, {"0.1.2.3", false}, {"::", false}, {"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false}, {"224.0.0.1", false}, {"ff02::1", false}, {"64:ff9b::7f00:1", false},
		{"93.184.216.34", true}, {"1.1.1.1", true}, {"2606:4700::1111", true}, {"::ffff:1.1.1.1", true},
	} {
		if got := publicAddr(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Errorf("%s: public %v, want %v", tc.addr, got, tc.public)
		}
	}
}
