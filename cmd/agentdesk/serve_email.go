package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
	"agentdesk/web/hub"
)

// wireEmail builds the email channel (see the smtp-* and email-secret flags
// of serve): the inbound SMTP server when --smtp-addr is set, IMAP polling
// of configured mailboxes when a stable --email-secret is, and the outbound
// sender when a relay is. Inbound mail enqueues through enq in the
// transaction that stores it.
func wireEmail(c serveConfig, store *postgres.Store, enq enqueuer, log *slog.Logger, parts *lifecycle) []web.Option {
	if c.channels.disableEmail {
		return nil
	}
	log = log.With("part", "email")
	cfg, sealed, err := emailConfig(c)
	if err != nil {
		log.Error("email channel disabled", "err", err)
		return nil
	}
	cfg.Events = emailEventsWithFiles{hubEmailEvents{}} // serve_attachments.go
	cfg.TicketCreated = web.PublishTicketCreated
	srv, err := email.NewServer(cfg, store.DB(), enq, log)
	if err != nil {
		log.Error("email channel disabled", "err", err)
		return nil
	}
	relay := email.RelayConfig{
		Addr:     c.channels.relay.addr,
		Username: c.channels.relay.user,
		Password: c.channels.relay.password,
		Security: c.channels.relay.security,
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
	// Support addresses and IMAP accounts are edited over /api/v1/email/...;
	// the poller reloads on every change made here, other processes' within
	// a minute. Without a stable secret IMAP passwords cannot be sealed.
	adminCfg := email.AdminConfig{}
	if sealed {
		poller := email.NewPoller(srv.Ingester(), log)
		parts.add("imap", poller)
		adminCfg = email.AdminConfig{Secret: cfg.Secret, Changed: poller.Reload}
	} else {
		log.Warn("--email-secret not set: IMAP polling off, ticket tokens change on restart")
	}
	if relay.Addr != "" {
		parts.add("smtp-out", sender)
	} else {
		log.Warn("--smtp-relay not set: agent replies are stored and queued, not sent")
	}
	return []web.Option{web.WithEmailAdmin(email.NewAdmin(store.DB(), adminCfg)), web.WithReplySender(agentdesk.KindEmail, web.ReplySenderFunc(
		func(ctx context.Context, actor agentdesk.Actor, t *agentdesk.Ticket, m *agentdesk.Message) (int64, error) {
			html, _ := m.Meta["html"].(string)
			id, err := queueEmailReply(ctx, store, sender, cfg.MaxMessageBytes, actor, t, m, html) // serve_attachments.go
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

// hubEmailEvents publishes the email channel's live updates (a customer's
// mail, a reply queued, a delivery's state) to the hub's streams.
type hubEmailEvents struct{}

func (hubEmailEvents) Publish(ctx context.Context, tx pgx.Tx, e email.Event) error {
	return hub.Publish(ctx, tx, hub.Event(e))
}

// emailConfig reads the inbound settings; sealed reports whether a stable
// secret was configured.
func emailConfig(c serveConfig) (email.Config, bool, error) {
	ch := c.channels
	cfg := email.Config{Addr: ch.smtpAddr, Hostname: ch.smtpHostname, MaxMessageBytes: ch.smtpMaxBytes, IMAPAllowPrivate: ch.imapPrivate}
	if cfg.Hostname == "" && c.publicURL != "" {
		if u, err := url.Parse(c.publicURL); err == nil {
			cfg.Hostname = u.Hostname()
		}
	}
	if cfg.MaxMessageBytes < 0 {
		return cfg, false, fmt.Errorf("--smtp-max-bytes: %d is not a size in bytes", cfg.MaxMessageBytes)
	}
	if certFile, keyFile := ch.smtpTLSCert, ch.smtpTLSKey; certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cfg, false, fmt.Errorf("SMTP TLS certificate: %w", err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if ch.imapCAFile != "" {
		b, err := os.ReadFile(ch.imapCAFile)
		if err != nil {
			return cfg, false, fmt.Errorf("--imap-ca-file: %w", err)
		}
		cfg.IMAPRootCAs = x509.NewCertPool()
		if !cfg.IMAPRootCAs.AppendCertsFromPEM(b) {
			return cfg, false, fmt.Errorf("--imap-ca-file: %s holds no PEM certificate", ch.imapCAFile)
		}
	}
	secret := ch.emailSecret
	if b, err := hex.DecodeString(secret); err == nil && len(b) >= 32 {
		cfg.Secret = b
	} else if len(secret) >= 32 {
		cfg.Secret = []byte(secret)
	} else if secret != "" {
		return cfg, false, errors.New("--email-secret must be at least 32 bytes")
	}
	if cfg.Secret == nil {
		cfg.Secret = make([]byte, 32)
		rand.Read(cfg.Secret)
		return cfg, false, nil
	}
	return cfg, true, nil
}
