package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
)

var emailTestSecret = []byte("0123456789abcdef0123456789abcdef-web")

func newEmailEnv(t *testing.T, secret []byte) *testEnv {
	t.Helper()
	e := newEnv(t)
	if secret != nil {
		e.server.emailAdmin = email.NewAdmin(e.store.DB(), email.AdminConfig{Secret: secret})
	}
	return e
}

func (e *testEnv) exec(sql string, args ...any) int64 {
	e.t.Helper()
	var id int64
	if err := e.store.DB().QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func TestEmailMailboxesAdmin(t *testing.T) {
	t.Parallel()
	e := newEmailEnv(t, emailTestSecret)
	admin := e.clients["admin"]
	queue := e.exec(`INSERT INTO queues (account_id, name) VALUES ($1, 'Email') RETURNING id`, e.account)
	team := e.exec(`INSERT INTO teams (account_id, name) VALUES ($1, 'Billing') RETURNING id`, e.account)

	r := admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "Help@Example.com", "display_name": "Help", "queue_id": queue, "team_id": team, "auto_ack": true})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var mb email.Mailbox
	r.json(t, &mb)
	if mb.Address != "help@example.com" || mb.QueueID != queue || mb.TeamID == nil || *mb.TeamID != team || mb.Priority != "normal" || mb.ClosedReply != "reopen" {
		t.Errorf("created %+v", mb)
	}
	path := "/api/v1/email/mailboxes/" + itoa(mb.ID)

	// Supervisors read; only admins write; agents and strangers neither.
	for _, tc := range []struct {
		who, method, path string
		body              any
		want              int
	}{
		{"supervisor", "GET", "/api/v1/email/mailboxes", nil, 200},
		{"supervisor", "GET", path, nil, 200},
		{"supervisor", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "s@example.com"}, 403},
		{"supervisor", "PATCH", path, map[string]any{"display_name": "x"}, 403},
		{"supervisor", "DELETE", path, nil, 403},
		{"agent", "GET", "/api/v1/email/mailboxes", nil, 403},
		{"agent", "GET", path, nil, 403},
		{"anon", "GET", "/api/v1/email/mailboxes", nil, 401},
		{"anon", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "a@example.com"}, 401},
		{"token", "GET", path, nil, 200},
	} {
		if r := e.clients[tc.who].do(t, tc.method, tc.path, tc.body); r.status != tc.want {
			t.Errorf("%s %s %s: %d, want %d (%s)", tc.who, tc.method, tc.path, r.status, tc.want, r.body)
		}
	}

	// Bad input is refused naming the field; nothing changes.
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		status int
		kind   agentdesk.Kind
		field  string
	}{
		{"bad address", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "help at example"}, 422, agentdesk.Invalid, "address"},
		{"unknown queue", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "q@example.com", "queue_id": queue + 100}, 422, agentdesk.Invalid, "queue_id"},
		{"unknown team", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "t@example.com", "team_id": team + 100}, 422, agentdesk.Invalid, "team_id"},
		{"display name of two lines", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "d@example.com", "display_name": "Help\r\nBcc: x@evil.test"}, 422, agentdesk.Invalid, "display_name"},
		{"bad priority", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "p@example.com", "priority": "now"}, 422, agentdesk.Invalid, "priority"},
		{"duplicate", "POST", "/api/v1/email/mailboxes", map[string]any{"address": "HELP@example.com"}, 409, agentdesk.Conflict, "address"},
		{"wrong type", "POST", "/api/v1/email/mailboxes", `{"address": 5}`, 400, agentdesk.Invalid, "address"},
		{"unknown field", "POST", "/api/v1/email/mailboxes", `{"address": "u@example.com", "queue": 1}`, 400, agentdesk.Invalid, "queue"},
		{"malformed", "POST", "/api/v1/email/mailboxes", `{"address": `, 400, agentdesk.Invalid, ""},
		{"oversize", "POST", "/api/v1/email/mailboxes", `{"display_name": "` + strings.Repeat("x", 20<<10) + `"}`, 413, agentdesk.TooLarge, ""},
		{"patch to a taken address", "PATCH", path, map[string]any{"address": "taken@example.com"}, 409, agentdesk.Conflict, "address"},
		{"patch bad closed_reply", "PATCH", path, map[string]any{"closed_reply": "drop"}, 422, agentdesk.Invalid, "closed_reply"},
		{"unknown id", "PATCH", "/api/v1/email/mailboxes/999999", map[string]any{"display_name": "x"}, 404, agentdesk.NotFound, ""},
	} {
		if tc.name == "patch to a taken address" {
			if r := admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "taken@example.com"}); r.status != 201 {
				t.Fatalf("second mailbox: %d %s", r.status, r.body)
			}
		}
		r := admin.do(t, tc.method, tc.path, tc.body)
		kind, field := r.errorKind(t)
		if r.status != tc.status || kind != tc.kind || (tc.field != "" && field != tc.field) {
			t.Errorf("%s: %d %s %q (%s), want %d %s %q", tc.name, r.status, kind, field, r.body, tc.status, tc.kind, tc.field)
		}
	}

	// Patch: only what is given changes; team_id null removes the team.
	r = admin.do(t, "PATCH", path, map[string]any{"display_name": "Helpdesk", "team_id": nil, "priority": "high"})
	if r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	r.json(t, &mb)
	if mb.DisplayName != "Helpdesk" || mb.TeamID != nil || mb.Priority != "high" || mb.QueueID != queue || !mb.AutoAck {
		t.Errorf("patched %+v", mb)
	}
	var list List[email.Mailbox]
	admin.do(t, "GET", "/api/v1/email/mailboxes", nil).json(t, &list)
	if len(list.Items) != 2 {
		t.Errorf("list has %d", len(list.Items))
	}
	if r := admin.do(t, "DELETE", path, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := admin.do(t, "GET", path, nil); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	if r := admin.do(t, "DELETE", path, nil); r.status != 404 {
		t.Errorf("second delete: %d", r.status)
	}
	var audits int64
	e.store.DB().QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE account_id = $1 AND action LIKE 'email_mailbox.%'`, e.account).Scan(&audits)
	if audits != 4 { // create ×2, update, delete
		t.Errorf("%d audit entries, want 4", audits)
	}
}

func TestEmailIMAPAccountsAdmin(t *testing.T) {
	t.Parallel()
	e := newEmailEnv(t, emailTestSecret)
	admin := e.clients["admin"]
	var mb email.Mailbox
	admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "support@example.com"}).json(t, &mb)

	const secretPW = "s3cret-imap-password"
	r := admin.do(t, "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "username": "support", "password": secretPW})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), secretPW) || strings.Contains(string(r.body), "password") {
		t.Errorf("the answer carries the password: %s", r.body)
	}
	var acc email.IMAPAccountView
	r.json(t, &acc)
	if acc.Port != 993 || acc.Security != "tls" || acc.Folder != "INBOX" || !acc.Enabled {
		t.Errorf("defaults: %+v", acc)
	}
	path := "/api/v1/email/imap-accounts/" + itoa(acc.ID)
	sealed := func() []byte {
		var b []byte
		e.store.DB().QueryRow(context.Background(), `SELECT password_sealed FROM email_imap_accounts WHERE id = $1`, acc.ID).Scan(&b)
		return b
	}
	before := sealed()
	if strings.Contains(string(before), secretPW) {
		t.Fatal("password stored in clear")
	}
	for _, who := range []string{"admin", "supervisor"} {
		for _, p := range []string{path, "/api/v1/email/imap-accounts"} {
			r := e.clients[who].do(t, "GET", p, nil)
			if r.status != 200 || strings.Contains(string(r.body), secretPW) || strings.Contains(string(r.body), "password") {
				t.Errorf("%s GET %s: %d %s", who, p, r.status, r.body)
			}
		}
	}
	if r := e.clients["agent"].do(t, "GET", path, nil); r.status != 403 {
		t.Errorf("agent read: %d", r.status)
	}
	if r := e.clients["supervisor"].do(t, "PATCH", path, map[string]any{"password": "x"}); r.status != 403 {
		t.Errorf("supervisor patch: %d", r.status)
	}

	// Patching other fields keeps the password; moving the account to
	// another server needs a new one (TestEmailIMAPMoveNeedsPassword); a new
	// password is sealed anew.
	r = admin.do(t, "PATCH", path, map[string]any{"folder": "Support", "enabled": false})
	if r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	r.json(t, &acc)
	if acc.Folder != "Support" || acc.Enabled || string(sealed()) != string(before) {
		t.Errorf("patched %+v (password kept: %v)", acc, string(sealed()) == string(before))
	}
	if r := admin.do(t, "PATCH", path, map[string]any{"password": "another-one"}); r.status != 200 || string(sealed()) == string(before) {
		t.Errorf("password change: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		status int
		field  string
	}{
		{"host", "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap example.com", "username": "u", "password": "p"}, 422, "host"},
		{"port", "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "port": 0x10000, "username": "u", "password": "p"}, 422, "port"},
		{"tls mode", "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "security": "none", "username": "u", "password": "p"}, 422, "security"},
		{"no password", "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "username": "u"}, 422, "password"},
		{"unknown mailbox", "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID + 50, "host": "imap.example.com", "username": "u", "password": "p"}, 422, "mailbox_id"},
		{"bad CA", "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "username": "u", "password": "p", "ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"}, 422, "ca_pem"},
		{"empty password on patch", "PATCH", path, map[string]any{"password": ""}, 422, "password"},
		{"oversize", "POST", "/api/v1/email/imap-accounts", `{"ca_pem": "` + strings.Repeat("A", 100<<10) + `"}`, 413, ""},
		{"unknown field", "POST", "/api/v1/email/imap-accounts", `{"mailbox_id": 1, "pass": "x"}`, 400, "pass"},
	} {
		r := admin.do(t, tc.method, tc.path, tc.body)
		_, field := r.errorKind(t)
		if r.status != tc.status || (tc.field != "" && field != tc.field) {
			t.Errorf("%s: %d %q (%s), want %d %q", tc.name, r.status, field, r.body, tc.status, tc.field)
		}
	}

	// A CA bundle is kept and shown (it is public); invalid ones are refused above.
	ca := testCAPEM(t)
	if r := admin.do(t, "PATCH", path, map[string]any{"ca_pem": ca}); r.status != 200 || !strings.Contains(string(r.body), "BEGIN CERTIFICATE") {
		t.Errorf("CA: %d %s", r.status, r.body)
	}

	if r := admin.do(t, "DELETE", path, nil); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if r := admin.do(t, "GET", path, nil); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	var audits int64
	e.store.DB().QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE account_id = $1 AND action LIKE 'email_imap_account.%' AND details::text NOT LIKE '%' || $2 || '%'`, e.account, secretPW).Scan(&audits)
	if audits != 5 { // create, 3 updates, delete; never with the password
		t.Errorf("%d audit entries without the password, want 5", audits)
	}
}

// A PATCH that points an IMAP account at another host, port, security or
// user must bring a new password: the stored one is only ever sent where it
// was given for. Without it: 422 on password and nothing stored changes.
func TestEmailIMAPMoveNeedsPassword(t *testing.T) {
	t.Parallel()
	e := newEmailEnv(t, emailTestSecret)
	admin := e.clients["admin"]
	var mb email.Mailbox
	admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "support@example.com"}).json(t, &mb)
	var acc email.IMAPAccountView
	r := admin.do(t, "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "username": "support", "password": "the-real-one"})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r.json(t, &acc)
	path := "/api/v1/email/imap-accounts/" + itoa(acc.ID)
	row := func() string {
		var s string
		e.store.DB().QueryRow(context.Background(), `SELECT row_to_json(a)::text FROM email_imap_accounts a WHERE id = $1`, acc.ID).Scan(&s)
		return s
	}
	audits := func() int64 {
		var n int64
		e.store.DB().QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE account_id = $1`, e.account).Scan(&n)
		return n
	}
	for _, tc := range []map[string]any{
		{"host": "attacker.example.net"},
		{"host": "attacker.example.net:993"},
		{"port": 1993},
		{"security": "insecure"},
		{"security": "starttls", "port": 993},
		{"username": "other"},
		{"host": "attacker.example.net", "enabled": true, "folder": "X"},
	} {
		before, auditsBefore := row(), audits()
		r := admin.do(t, "PATCH", path, tc)
		kind, field := r.errorKind(t)
		if r.status != 422 || kind != agentdesk.Invalid || field != "password" || !strings.Contains(string(r.body), "a new password is required when the server or user changes") {
			t.Errorf("%v without password: %d %s", tc, r.status, r.body)
		}
		if row() != before || audits() != auditsBefore {
			t.Errorf("%v without password changed the account or the audit log", tc)
		}
		with := map[string]any{"password": "a-new-one"}
		for k, v := range tc {
			with[k] = v
		}
		if r := admin.do(t, "PATCH", path, with); r.status != 200 {
			t.Errorf("%v with password: %d %s", tc, r.status, r.body)
		}
		if row() == before {
			t.Errorf("%v with password stored nothing", tc)
		}
		// Back to the original server for the next case.
		if r := admin.do(t, "PATCH", path, map[string]any{"host": "imap.example.com", "port": 993, "security": "tls", "username": "support", "password": "the-real-one"}); r.status != 200 {
			t.Fatalf("reset: %d %s", r.status, r.body)
		}
	}
	// Naming the current server again is no move: no password needed.
	if r := admin.do(t, "PATCH", path, map[string]any{"host": "IMAP.example.com", "port": 993, "security": "tls", "username": "support"}); r.status != 200 {
		t.Errorf("same server: %d %s", r.status, r.body)
	}
}

// A support address is unique across accounts, but the conflict with
// another account's says only that it is not available; one of the same
// account's says so plainly.
func TestEmailMailboxConflictsDoNotDisclose(t *testing.T) {
	t.Parallel()
	e := newEmailEnv(t, emailTestSecret)
	other := e.exec(`INSERT INTO accounts (name) VALUES ('Globex Secret Tenant') RETURNING id`)
	e.exec(`INSERT INTO email_mailboxes (account_id, address, display_name) VALUES ($1, 'theirs@example.com', 'Globex Support') RETURNING id`, other)
	admin := e.clients["admin"]
	var mb email.Mailbox
	if r := admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "ours@example.com"}); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	} else {
		r.json(t, &mb)
	}
	admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "ours2@example.com"})
	path := "/api/v1/email/mailboxes/" + itoa(mb.ID)
	for _, tc := range []struct {
		name, method, path, address, message string
	}{
		{"create, other account", "POST", "/api/v1/email/mailboxes", "Theirs@example.com", "address is not available"},
		{"patch, other account", "PATCH", path, "theirs@example.com", "address is not available"},
		{"create, same account", "POST", "/api/v1/email/mailboxes", "ours@example.com", "already a support address of this account"},
		{"patch, same account", "PATCH", path, "ours2@example.com", "already a support address of this account"},
	} {
		r := admin.do(t, tc.method, tc.path, map[string]any{"address": tc.address})
		kind, field := r.errorKind(t)
		if r.status != 409 || kind != agentdesk.Conflict || field != "address" || !strings.Contains(string(r.body), tc.message) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
		for _, leak := range []string{"Globex", "theirs", "already exists", "Key ("} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("%s: the answer discloses %q: %s", tc.name, leak, r.body)
			}
		}
	}
	// The address stays the other account's.
	var owner int64
	e.store.DB().QueryRow(context.Background(), `SELECT account_id FROM email_mailboxes WHERE address = 'theirs@example.com'`).Scan(&owner)
	if owner != other {
		t.Errorf("address now belongs to account %d", owner)
	}
}

// A server without an email secret cannot seal passwords: 422, nothing stored.
func TestEmailIMAPWithoutSecret(t *testing.T) {
	t.Parallel()
	e := newEmailEnv(t, nil)
	admin := e.clients["admin"]
	var mb email.Mailbox
	admin.do(t, "POST", "/api/v1/email/mailboxes", map[string]any{"address": "support@example.com"}).json(t, &mb)
	r := admin.do(t, "POST", "/api/v1/email/imap-accounts", map[string]any{"mailbox_id": mb.ID, "host": "imap.example.com", "username": "u", "password": "p"})
	if kind, field := r.errorKind(t); r.status != 422 || kind != agentdesk.Invalid || field != "password" || !strings.Contains(string(r.body), "email-secret") {
		t.Errorf("%d %s", r.status, r.body)
	}
	var list List[email.IMAPAccountView]
	admin.do(t, "GET", "/api/v1/email/imap-accounts", nil).json(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("stored %d accounts", len(list.Items))
	}
}

// Another account's addresses and IMAP accounts are not found.
func TestEmailAdminTenancy(t *testing.T) {
	t.Parallel()
	e := newEmailEnv(t, emailTestSecret)
	other := e.exec(`INSERT INTO accounts (name) VALUES ('Other') RETURNING id`)
	mb := e.exec(`INSERT INTO email_mailboxes (account_id, address) VALUES ($1, 'theirs@example.com') RETURNING id`, other)
	acc := e.exec(`INSERT INTO email_imap_accounts (account_id, mailbox_id, host, port, username, password_sealed) VALUES ($1, $2, 'h', 993, 'u', '\x00') RETURNING id`, other, mb)
	admin := e.clients["admin"]
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/email/mailboxes/" + itoa(mb)}, {"PATCH", "/api/v1/email/mailboxes/" + itoa(mb)}, {"DELETE", "/api/v1/email/mailboxes/" + itoa(mb)},
		{"GET", "/api/v1/email/imap-accounts/" + itoa(acc)}, {"PATCH", "/api/v1/email/imap-accounts/" + itoa(acc)}, {"DELETE", "/api/v1/email/imap-accounts/" + itoa(acc)},
	} {
		var body any
		if tc.method == "PATCH" {
			body = map[string]any{}
		}
		if r := admin.do(t, tc.method, tc.path, body); r.status != 404 {
			t.Errorf("%s %s: %d", tc.method, tc.path, r.status)
		}
	}
	var list List[email.Mailbox]
	admin.do(t, "GET", "/api/v1/email/mailboxes", nil).json(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("lists another account's addresses: %+v", list.Items)
	}
}

func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
