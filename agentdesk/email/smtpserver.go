package email

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
)

// Server is the inbound SMTP server for the support addresses.
type Server struct {
	cfg Config
	db  *pgxpool.Pool
	in  *Ingester
	log *slog.Logger

	mu   sync.Mutex
	srv  *smtp.Server
	ln   net.Listener
	base context.Context
	stop context.CancelFunc
	done chan struct{}
}

// NewServer returns an SMTP server that stores mail for the support
// addresses in email_mailboxes and enqueues routing tasks through enq.
func NewServer(cfg Config, db *pgxpool.Pool, enq Enqueuer, log *slog.Logger) (*Server, error) {
	in, err := NewIngester(cfg, db, enq, log)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: in.cfg, db: db, in: in, log: in.log.With("component", "smtp")}, nil
}

// Ingester is the ingestion the server uses (the IMAP poller shares it).
func (s *Server) Ingester() *Ingester { return s.in }

// Addr is the address the server listens on once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("smtp server already started")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp listen: %w", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = s.cfg.Hostname
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = 50
	// RFC 5321 says 1000, but real mail has longer lines (unwrapped HTML);
	// refusing it would lose customers' mail, and SIZE bounds memory anyway.
	srv.MaxLineLength = 1 << 16
	srv.EnableSMTPUTF8 = true // internationalised addresses and raw UTF-8 headers are parsed
	srv.ReadTimeout = s.cfg.ReadTimeout
	srv.WriteTimeout = time.Minute
	srv.TLSConfig = s.cfg.TLS // STARTTLS is offered only when set
	srv.ErrorLog = slogLogger{s.log}
	s.base, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.srv, s.ln, s.done = srv, ln, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			s.log.Error("smtp serve", "err", err)
		}
	}()
	s.log.Info("smtp listening", "addr", ln.Addr().String(), "starttls", s.cfg.TLS != nil)
	return nil
}

// Stop stops accepting connections and waits for sessions in DATA to
// finish (or ctx to expire, which then aborts them).
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, done, stop := s.srv, s.done, s.stop
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	stop()
	<-done
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.l.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.l.Warn(fmt.Sprint(v...)) }

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, remote: c.Conn().RemoteAddr().String()}, nil
}

// session is one SMTP transaction's state.
type session struct {
	s      *Server
	remote string
	from   string
	rcpts  []rcpt
}

type rcpt struct {
	mb  *Mailbox
	tag string
}

func (ss *session) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

var errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure storing the message, please try again later"}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ctx, cancel := context.WithTimeout(ss.s.base, 10*time.Second)
	defer cancel()
	mb, tag, err := mailboxFor(ctx, ss.s.db, to)
	if err != nil {
		ss.s.log.Error("smtp rcpt lookup", "err", err)
		return errTemporary
	}
	if mb == nil {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: fmt.Sprintf("<%s> is not a support address on this server; mail not accepted", to)}
	}
	ss.rcpts = append(ss.rcpts, rcpt{mb, tag})
	return nil
}

// Data reads the message and answers 250 only after it is committed. A
// client that gets a 4xx retries; the Message-ID makes the retry harmless.
func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // 552 from the size limit
		}
		return err
	}
	p, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Message rejected: its header could not be parsed; nothing was stored"}
	}
	ctx, cancel := context.WithTimeout(ss.s.base, time.Minute)
	defer cancel()
	// One ingestion per account: two support addresses of one account on a
	// mail make one ticket, not two.
	seen := map[int64]bool{}
	for i, rc := range ss.rcpts {
		if seen[rc.mb.AccountID] {
			continue
		}
		seen[rc.mb.AccountID] = true
		var tags []string
		for _, o := range ss.rcpts[i:] {
			if o.mb.AccountID == rc.mb.AccountID && o.tag != "" {
				tags = append(tags, o.tag)
			}
		}
		res, err := ss.s.in.IngestParsed(ctx, Delivery{Mailbox: rc.mb, Tags: tags, EnvelopeFrom: ss.from, Raw: raw}, p)
		if err != nil {
			var de *agentdesk.Error
			if errors.As(err, &de) && de.Kind == agentdesk.Invalid {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
					Message: "Message rejected: " + strings.TrimPrefix(de.Message, "invalid: ") + "; nothing was stored"}
			}
			ss.s.log.Error("smtp ingest", "err", err, "message_id", p.MessageID, "remote", ss.remote)
			return errTemporary
		}
		ss.s.log.Debug("smtp accepted", "message_id", p.MessageID, "ticket_id", res.TicketID, "duplicate", res.Duplicate, "threaded_by", res.ThreadedBy)
	}
	return nil
}
