package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is our own SMTP relay for tests: submission with STARTTLS and AUTH
// PLAIN, recording what it accepts. failNext makes the next DATA answer
// with the given error.
type sink struct {
	addr  string
	roots *x509.CertPool
	srv   *smtp.Server

	mu       sync.Mutex
	got      []sunk
	failNext []*smtp.SMTPError
	arrived  chan struct{}
	// hold, when set, makes DATA wait for it after signalling inData.
	hold   chan struct{}
	inData chan struct{}
}

type sunk struct {
	from string
	to   []string
	raw  []byte
	tls  bool
	user string
}

func newSink(t *testing.T) *sink {
	t.Helper()
	cfg, roots := selfSignedTLS(t)
	s := &sink{roots: roots, arrived: make(chan struct{}, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s, c: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.TLSConfig = cfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr, s.srv = ln.Addr().String(), srv
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) relay() RelayConfig {
	return RelayConfig{Addr: s.addr, Username: "desk", Password: "relay-pass", Security: "starttls",
		TLSConfig: &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1"}, Backoff: 10 * time.Millisecond, Poll: 50 * time.Millisecond, MaxAttempts: 3}
}

// wait returns the n-th accepted mail (0-based), waiting for it to arrive.
func (s *sink) wait(t *testing.T, n int) sunk {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		if len(s.got) > n {
			m := s.got[n]
			s.mu.Unlock()
			return m
		}
		s.mu.Unlock()
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("mail %d never reached the sink", n)
		}
	}
}

type sinkSession struct {
	s    *sink
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "desk" || pass != "relay-pass" {
			return errors.New("bad credentials")
		}
		ss.user = user
		return nil
	}), nil
}
func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }
func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.hold != nil {
		ss.s.inData <- struct{}{}
		<-ss.s.hold
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if len(ss.s.failNext) > 0 {
		e := ss.s.failNext[0]
		ss.s.failNext = ss.s.failNext[1:]
		return e
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.s.got = append(ss.s.got, sunk{from: ss.from, to: ss.to, raw: raw, tls: isTLS, user: ss.user})
	select {
	case ss.s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func startSender(t *testing.T, e *env, relay RelayConfig) *Sender {
	t.Helper()
	s, err := NewSender(e.cfg, relay, e.db, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop sender: %v", err)
		}
	})
	return s
}

// waitDelivery waits until the delivery of message msgID leaves "queued".
func (e *env) waitDelivery(msgID int64) (state, answer string, attempts int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		err := e.db.QueryRow(context.Background(), `SELECT state, last_answer, attempts FROM email_deliveries WHERE message_id = $1`, msgID).Scan(&state, &answer, &attempts)
		if err != nil {
			e.t.Fatal(err)
		}
		if state != "queued" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("delivery of message %d still queued", msgID)
	return
}
