package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

// The email channel is configured from the environment (serve's flags are
// its own):
//
//	AGENTDESK_EMAIL=off                 disable the channel
//	AGENTDESK_EMAIL_SECRET              ≥32 bytes (or 64 hex digits): ticket tokens, sealed IMAP passwords
//	AGENTDESK_SMTP_ADDR                 inbound SMTP listen address, e.g. 127.0.0.1:2525 (unset: no SMTP server)
//	AGENTDESK_SMTP_HOSTNAME             name in the greeting and our Message-IDs (default: public URL host)
//	AGENTDESK_SMTP_MAX_BYTES            size limit (default 25 MB)
//	AGENTDESK_SMTP_TLS_CERT, _TLS_KEY   PEM files; enables STARTTLS
//	AGENTDESK_SMTP_RELAY                outbound relay host:port (unset: replies stay queued)
//	AGENTDESK_SMTP_RELAY_USER, _RELAY_PASSWORD, _RELAY_SECURITY (starttls|tls|none)
func init() {
	partWirers = append(partWirers, wireEmail)
}

// emailEnqueuer is the routing engine, set by whoever wires routing
// (`emailEnqueuer = engine`). Until it is set, inbound mail is refused with
// a temporary error, so senders retry and no mail is stored unrouted.
var emailEnqueuer email.Enqueuer

type lateEnqueuer struct{}

func (lateEnqueuer) EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error) {
	if emailEnqueuer == nil {
		return 0, errors.New("routing engine not wired into the email channel")
	}
	return emailEnqueuer.EnqueueTx(ctx, tx, req)
}

func wireEmail(ctx context.Context, c serveConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) []web.Option {
	if strings.EqualFold(os.Getenv("AGENTDESK_EMAIL"), "off") {
		return nil
	}
	log = log.With("part", "email")
	cfg, sealed, err := emailConfigFromEnv(c)
	if err != nil {
		log.Error("email channel disabled", "err", err)
		return nil
	}
	srv, err := email.NewServer(cfg, store.DB(), lateEnqueuer{}, log)
	if err != nil {
		log.Error("email channel disabled", "err", err)
		return nil
	}
	relay := email.RelayConfig{
		Addr:     os.Getenv("AGENTDESK_SMTP_RELAY"),
		Username: os.Getenv("AGENTDESK_SMTP_RELAY_USER"),
		Password: os.Getenv("AGENTDESK_SMTP_RELAY_PASSWORD"),
		Security: os.Getenv("AGENTDESK_SMTP_RELAY_SECURITY"),
	}
	sender, err := email.NewSender(cfg, relay, store.DB(), log)
	if err != nil {
		log.Error("email channel disabled", "err", err)
		return nil
	}
	// Listening is opt-in: a fixed default port would make two servers on
	// one machine (tests, make run beside a test) fail to start.
	if cfg.Addr != "" {
		parts.add("smtp", srv)
	}
	if sealed {
		parts.add("imap", email.NewPoller(srv.Ingester(), log))
	} else {
		log.Warn("AGENTDESK_EMAIL_SECRET not set: IMAP polling off, ticket tokens change on restart")
	}
	if relay.Addr != "" {
		parts.add("smtp-out", sender)
	} else {
		log.Warn("AGENTDESK_SMTP_RELAY not set: agent replies are stored and queued, not sent")
	}
	return []web.Option{web.WithReplySender(agentdesk.KindEmail, web.ReplySenderFunc(
		func(ctx context.Context, actor agentdesk.Actor, t *agentdesk.Ticket, m *agentdesk.Message) (int64, error) {
			html, _ := m.Meta["html"].(string)
			id, err := sender.QueueReply(ctx, actor, t.ID, m.Body, html)
			if errors.Is(err, email.ErrNoMailbox) || errors.Is(err, email.ErrNoAddress) {
				// Nothing to send it with or to: record it as not sent,
				// as the desk does for channels without a sender.
				if m.Meta == nil {
					m.Meta = map[string]any{}
				}
				m.Meta["delivery"] = "not_sent"
				m.Meta["delivery_reason"] = err.Error()
				if err := store.AddMessage(ctx, actor, m); err != nil {
					return 0, err
				}
				return m.ID, nil
			}
			return id, err
		}))}
}

// emailConfigFromEnv reads the inbound settings; sealed reports whether a
// stable secret was configured.
func emailConfigFromEnv(c serveConfig) (email.Config, bool, error) {
	cfg := email.Config{Addr: os.Getenv("AGENTDESK_SMTP_ADDR"), Hostname: os.Getenv("AGENTDESK_SMTP_HOSTNAME")}
	if cfg.Hostname == "" && c.publicURL != "" {
		if u, err := url.Parse(c.publicURL); err == nil {
			cfg.Hostname = u.Hostname()
		}
	}
	if v := os.Getenv("AGENTDESK_SMTP_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return cfg, false, fmt.Errorf("AGENTDESK_SMTP_MAX_BYTES: %q is not a size in bytes", v)
		}
		cfg.MaxMessageBytes = n
	}
	if certFile, keyFile := os.Getenv("AGENTDESK_SMTP_TLS_CERT"), os.Getenv("AGENTDESK_SMTP_TLS_KEY"); certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cfg, false, fmt.Errorf("SMTP TLS certificate: %w", err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	secret := os.Getenv("AGENTDESK_EMAIL_SECRET")
	if b, err := hex.DecodeString(secret); err == nil && len(b) >= 32 {
		cfg.Secret = b
	} else if len(secret) >= 32 {
		cfg.Secret = []byte(secret)
	} else if secret != "" {
		return cfg, false, errors.New("AGENTDESK_EMAIL_SECRET must be at least 32 bytes")
	}
	if cfg.Secret == nil {
		cfg.Secret = make([]byte, 32)
		rand.Read(cfg.Secret)
		return cfg, false, nil
	}
	return cfg, true, nil
}
