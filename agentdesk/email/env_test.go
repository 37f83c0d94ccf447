package email

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres/pgtest"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// taskTable records what the ingestion enqueued, inside its transaction, so
// a test sees a task exactly when the mail is committed.
type taskTable struct{}

func (taskTable) EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO test_tasks (account_id, ticket_id, customer_id, queue_id, priority) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		req.AccountID, req.TicketID, req.CustomerID, req.QueueID, string(req.Priority)).Scan(&id)
	return id, err
}

type env struct {
	t       *testing.T
	db      *pgxpool.Pool
	acct    int64
	mailbox *Mailbox
	cfg     Config
	srv     *Server
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv gives a test its own database with one account and the support
// address support@example.com, and an SMTP server on a free port.
func newEnv(t *testing.T, mutate ...func(*Config, *Mailbox)) *env {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	e := &env{t: t, db: db}
	if _, err := db.Exec(ctx, `CREATE TABLE test_tasks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint, ticket_id bigint, customer_id bigint, queue_id bigint, priority text, created_at timestamptz DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ('Acme') RETURNING id`).Scan(&e.acct); err != nil {
		t.Fatal(err)
	}
	// The IMAP test servers listen on 127.0.0.1.
	e.cfg = Config{Addr: "127.0.0.1:0", Hostname: "desk.example.com", Secret: testSecret, IMAPAllowPrivate: true}
	e.mailbox = &Mailbox{Address: "support@example.com", DisplayName: "Acme Support", QueueID: 7}
	for _, m := range mutate {
		m(&e.cfg, e.mailbox)
	}
	if err := CreateMailbox(ctx, db, e.acct, e.mailbox); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(e.cfg, db, taskTable{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	e.srv = srv
	return e
}

// send delivers raw over SMTP with go-smtp's client and returns the error
// the server answered with (nil for 250).
func (e *env) send(from string, to []string, raw string) error {
	e.t.Helper()
	c, err := smtp.Dial(e.srv.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.net"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, strings.NewReader(crlf(raw))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func (e *env) mustSend(raw string) {
	e.t.Helper()
	if err := e.send("customer@example.net", []string{"support@example.com"}, raw); err != nil {
		e.t.Fatalf("send: %v", err)
	}
}

// crlf turns a test's \n line ends into the wire's \r\n.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

type storedMessage struct {
	ID, TicketID, CustomerID int64
	Direction, Subject, Body string
	Meta                     map[string]any
}

func (e *env) ticketOf(rfcMessageID string) int64 {
	e.t.Helper()
	var id int64
	err := e.db.QueryRow(context.Background(), `SELECT coalesce(ticket_id, 0) FROM email_messages WHERE account_id = $1 AND rfc_message_id = $2`, e.acct, rfcMessageID).Scan(&id)
	if err != nil {
		e.t.Fatalf("ticket of %s: %v", rfcMessageID, err)
	}
	return id
}

func (e *env) message(rfcMessageID string) storedMessage {
	e.t.Helper()
	var m storedMessage
	err := e.db.QueryRow(context.Background(), `
SELECT m.id, m.ticket_id, m.customer_id, m.direction, m.subject, m.body, m.meta
FROM email_messages e JOIN messages m ON m.account_id = e.account_id AND m.id = e.message_id
WHERE e.account_id = $1 AND e.rfc_message_id = $2`, e.acct, rfcMessageID).Scan(&m.ID, &m.TicketID, &m.CustomerID, &m.Direction, &m.Subject, &m.Body, &m.Meta)
	if err != nil {
		e.t.Fatalf("message %s: %v", rfcMessageID, err)
	}
	return m
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// snapshot is a fingerprint of everything the email channel stores, to
// prove a refused or duplicate mail changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var s string
	err := e.db.QueryRow(context.Background(), `SELECT concat_ws('|',
 (SELECT count(*) FROM tickets), (SELECT coalesce(max(updated_at)::text, '') FROM tickets),
 (SELECT string_agg(status, ',' ORDER BY id) FROM tickets),
 (SELECT count(*) FROM messages), (SELECT count(*) FROM customers), (SELECT count(*) FROM identities),
 (SELECT count(*) FROM email_messages), (SELECT count(*) FROM email_blobs), (SELECT count(*) FROM email_attachments),
 (SELECT count(*) FROM test_tasks), (SELECT count(*) FROM email_deliveries), (SELECT count(*) FROM river_job),
 (SELECT count(*) FROM stream_events))`).Scan(&s)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// selfSignedTLS is a certificate for 127.0.0.1 and localhost, for STARTTLS
// tests on both sides.
func selfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}
