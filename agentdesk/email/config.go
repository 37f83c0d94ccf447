package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Enqueuer queues a routing task in the caller's transaction. The routing
// engine implements it; cmd/agentdesk wires it in, so this package never
// imports routing.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error)
}

// Config configures the inbound side (SMTP server, IMAP poller, ingestion).
type Config struct {
	// Addr is where the SMTP server listens. Default 127.0.0.1:2525.
	Addr string
	// Hostname names this server in the SMTP greeting and in the Message-IDs
	// of the mail we send. Default "localhost".
	Hostname string
	// MaxMessageBytes is announced with SIZE and enforced while reading
	// DATA. Default 25 MB.
	MaxMessageBytes int64
	// TLS enables STARTTLS when set.
	TLS *tls.Config
	// Secret (at least 32 bytes) keys the ticket tokens in outbound mail
	// and seals IMAP passwords (AES-256-GCM). Changing it breaks threading by
	// token for mail already sent and makes stored IMAP passwords unreadable.
	Secret []byte
	// ThreadWindow is how far back the subject + sender match looks.
	// Default 72 hours.
	ThreadWindow time.Duration
	// AutoAckInterval is the minimum time between two acknowledgements to
	// one sender. Default 1 hour.
	AutoAckInterval time.Duration
	// IMAPIdle is how long one IDLE lasts before the poller checks again;
	// servers drop IDLE after 30 minutes. Default 10 minutes. IMAPPoll is
	// the polling interval for servers without IDLE. Default 1 minute.
	IMAPIdle time.Duration
	IMAPPoll time.Duration
	// IMAPRootCAs verifies IMAP servers' certificates when an account has
	// no CA bundle of its own (--imap-ca-file); nil means the system's roots.
	IMAPRootCAs *x509.CertPool
	// IMAPAllowPrivate lets the poller connect to IMAP servers on loopback,
	// private (RFC 1918, fc00::/7), shared (100.64/10) and link-local
	// addresses (--imap-allow-private). Off by default: an admin could
	// otherwise probe the server's own network through the poller and read
	// the answers in last_error. Installs whose IMAP server is on their own
	// network, and tests against a local server, turn it on.
	IMAPAllowPrivate bool
	// ReadTimeout bounds how long an SMTP client may stay silent.
	ReadTimeout time.Duration
	// Events, when set, receives the live updates of the desks (a customer's
	// mail on a ticket, a reply queued, a delivery sent or failed) in the
	// transaction of each change.
	Events Publisher
	// TicketCreated, when set, is called in the transaction of a mail that
	// opens a ticket, so the lists that show new tickets (all open, the
	// team's queue, supervisors) insert it at once. Which lists those are is
	// the desk's rule, so the caller supplies it (cmd/agentdesk wires web's).
	TicketCreated func(ctx context.Context, tx pgx.Tx, t *agentdesk.Ticket) error
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:2525"
	}
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 25 << 20
	}
	if c.ThreadWindow == 0 {
		c.ThreadWindow = 72 * time.Hour
	}
	if c.AutoAckInterval == 0 {
		c.AutoAckInterval = time.Hour
	}
	if c.IMAPIdle == 0 {
		c.IMAPIdle = 10 * time.Minute
	}
	if c.IMAPPoll == 0 {
		c.IMAPPoll = time.Minute
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 5 * time.Minute
	}
	if len(c.Secret) < 32 {
		return c, errors.New("email: Config.Secret must be at least 32 bytes")
	}
	return c, nil
}

// RelayConfig is the SMTP relay outbound mail goes through (submission).
type RelayConfig struct {
	Addr     string // host:port, usually :587
	Username string // AUTH PLAIN when set
	Password string
	// Security is "starttls" (default, required), "tls" (implicit, :465) or
	// "none" (only for a relay on the same machine).
	Security  string
	TLSConfig *tls.Config
	// MaxAttempts before a delivery is marked failed. Default 8, at most 100.
	MaxAttempts int
	// Backoff is the first retry delay; it doubles per attempt up to an hour.
	// Default 30 seconds.
	Backoff time.Duration
	// Poll is how often the outbox queue is checked when no insert
	// notification wakes it (and when a retry becomes due). Default 5 seconds.
	Poll time.Duration
	// Workers is how many deliveries run at once. Default 4.
	Workers int
}

func (r RelayConfig) withDefaults() RelayConfig {
	if r.Security == "" {
		r.Security = "starttls"
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 8
	}
	r.MaxAttempts = min(r.MaxAttempts, maxJobAttempts)
	if r.Backoff == 0 {
		r.Backoff = 30 * time.Second
	}
	if r.Poll == 0 {
		r.Poll = 5 * time.Second
	}
	if r.Workers == 0 {
		r.Workers = 4
	}
	return r
}

func tlsConfig(r RelayConfig) *tls.Config {
	if r.TLSConfig != nil {
		return r.TLSConfig.Clone()
	}
	host, _, _ := net.SplitHostPort(r.Addr)
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}

func tlsClient(conn net.Conn, r RelayConfig) net.Conn {
	return tls.Client(conn, tlsConfig(r))
}
