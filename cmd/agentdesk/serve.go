package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
	"agentdesk/web/ui"
)

func init() {
	register("serve", "run the server (API, websockets, UI, channels, routing)", runServe)
}

// serveConfig is everything `serve` reads from flags and AGENTDESK_* variables.
type serveConfig struct {
	databaseURL    string
	addr           string
	publicURL      string
	secureCookies  bool
	trustedOrigins string
	logFormat      string
	dbMaxConns     int
	migrate        bool
	shutdown       time.Duration
	channels       channelConfig
}

// channelConfig is what the channels and the routing engine read. The zero
// value runs everything with defaults (tests build it that way).
type channelConfig struct {
	disableRouting bool
	disableEmail   bool
	smtpAddr       string // inbound SMTP; "" = no listener
	smtpHostname   string
	smtpMaxBytes   int64
	smtpTLSCert    string
	smtpTLSKey     string
	emailSecret    string
	imapCAFile     string // PEM CA bundle for IMAP servers' certificates
	imapPrivate    bool   // --imap-allow-private
	relay          relayFlags
	widgetSecret   string
	phoneRegion    string
	formRate       int
	attachmentMax  int64 // largest upload of an agent (web.WithAttachmentLimits)
	widgetFileMax  int64 // largest upload of a chat visitor
	blobDir        string
	blobFileMin    int64
	uploadTTL      uploadRetention // --upload-retention (serve_upload_cleanup.go)
}

type relayFlags struct{ addr, user, password, security string }

func (c *channelConfig) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.disableRouting, "disable-routing", false, "do not run the routing engine in this process (API-only nodes)")
	fs.BoolVar(&c.disableEmail, "disable-email", false, "turn the email channel off")
	fs.StringVar(&c.smtpAddr, "smtp-addr", "", "inbound SMTP listen address, e.g. 127.0.0.1:2525 (empty: no SMTP server)")
	fs.StringVar(&c.smtpHostname, "smtp-hostname", "", "name in the SMTP greeting and our Message-IDs (default: host of --public-url)")
	fs.Int64Var(&c.smtpMaxBytes, "smtp-max-bytes", 0, "largest accepted mail in bytes (default 25 MB)")
	fs.StringVar(&c.smtpTLSCert, "smtp-tls-cert", "", "PEM certificate for STARTTLS on inbound SMTP")
	fs.StringVar(&c.smtpTLSKey, "smtp-tls-key", "", "PEM key for --smtp-tls-cert")
	fs.StringVar(&c.emailSecret, "email-secret", "", "32+ bytes (or 64 hex digits) keying ticket tokens in outbound mail and sealing IMAP passwords; the same on every process")
	fs.StringVar(&c.imapCAFile, "imap-ca-file", "", "PEM CA bundle verifying IMAP servers' certificates (default: the system's roots; an IMAP account's own ca_pem wins)")
	fs.BoolVar(&c.imapPrivate, "imap-allow-private", false, "let IMAP accounts poll servers on loopback, private or link-local addresses (off: an admin could probe this server's network)")
	fs.StringVar(&c.relay.addr, "smtp-relay", "", "outbound SMTP relay host:port for agent replies (empty: replies stay queued)")
	fs.StringVar(&c.relay.user, "smtp-relay-user", "", "relay AUTH user")
	fs.StringVar(&c.relay.password, "smtp-relay-password", "", "relay AUTH password")
	fs.StringVar(&c.relay.security, "smtp-relay-security", "", "relay transport security: starttls (default), tls or none")
	fs.StringVar(&c.widgetSecret, "widget-secret", "", "32+ bytes signing chat widget tokens; the same on every process (empty: random, valid on this process only)")
	fs.StringVar(&c.phoneRegion, "phone-region", "", "region (e.g. US, DE) for phone numbers typed without +country code (empty: such numbers are refused)")
	fs.IntVar(&c.formRate, "form-rate", 0, "contact-form posts per minute per client address (default 10)")
	fs.Int64Var(&c.attachmentMax, "attachment-max-bytes", 0, "largest file an agent may attach, in bytes (default 25 MB)")
	fs.Int64Var(&c.widgetFileMax, "widget-attachment-max-bytes", 0, "largest file a chat visitor may send, in bytes (default 10 MB)")
	fs.StringVar(&c.blobDir, "blob-dir", "", "directory for uploaded files of at least --blob-file-min-bytes, shared by every process (empty: all files in the database)")
	fs.Int64Var(&c.blobFileMin, "blob-file-min-bytes", 1<<20, "uploaded files this large or larger go to --blob-dir")
	fs.Var(&c.uploadTTL, "upload-retention", "delete uploaded files still on no message after this `duration` (at least 1m), and stored files nothing references (default 24h)")
}

// absBlobDir makes --blob-dir absolute: the rows keep each file's path,
// and a process started from another directory must find the files.
func (c *channelConfig) absBlobDir() error {
	if c.blobDir == "" {
		return nil
	}
	abs, err := filepath.Abs(c.blobDir)
	if err != nil {
		return fmt.Errorf("serve: --blob-dir: %w", err)
	}
	c.blobDir = abs
	return nil
}

// defaultDBMaxConns sizes the process's PostgreSQL pool by the CPUs it may
// use: 4 per CPU, at least 8 (8 on the 2-core reference machine). More
// connections than the database's cores can serve do not add throughput,
// and each costs: every backend rebuilds its catalog caches and re-plans
// its statements after each autovacuum of a busy table, all at once, and a
// pool that grows during a slow moment adds cold backends just then. With
// 20 connections on 2 cores, the routing benchmark showed stalls of 30–80
// ms when autovacuum came by; with 8, under 35 ms (BENCHMARKS.md). A
// database server of its own, with more cores, is sized with
// --db-max-conns.
func defaultDBMaxConns() int {
	return max(8, 4*runtime.GOMAXPROCS(0))
}

func runServe(ctx context.Context, args []string) error {
	smallStacks()
	fs := newFlagSet("serve")
	var c serveConfig
	dbURL := databaseURLFlag(fs)
	fs.StringVar(&c.addr, "addr", "localhost:8080", "listen address for HTTP and websockets")
	fs.StringVar(&c.publicURL, "public-url", "", "URL browsers use to reach the server (default http://<addr>)")
	fs.BoolVar(&c.secureCookies, "secure-cookies", false, "mark session cookies Secure (set when served over HTTPS)")
	fs.StringVar(&c.trustedOrigins, "trusted-origins", "", "comma-separated extra origins allowed to make cookie-authenticated writes")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&c.dbMaxConns, "db-max-conns", defaultDBMaxConns(), "maximum PostgreSQL connections of this process: by default 4 per CPU, at least 8")
	fs.BoolVar(&c.migrate, "migrate", true, "apply pending migrations at start")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 20*time.Second, "how long to wait for in-flight requests on SIGTERM")
	c.channels.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := c.channels.absBlobDir(); err != nil {
		return err
	}
	c.databaseURL = *dbURL
	if c.databaseURL == "" {
		return errors.New("serve: --database-url (or DATABASE_URL) is required")
	}
	log := newLogger(c.logFormat)
	db, err := postgres.Open(ctx, c.databaseURL, int32(c.dbMaxConns))
	if err != nil {
		return err
	}
	defer db.Close()
	if c.migrate {
		done, err := postgres.Migrate(ctx, db)
		if err != nil {
			return err
		}
		if len(done) > 0 {
			log.Info("migrations applied", "versions", fmt.Sprint(done))
		}
	}
	store := postgres.NewStore(db)
	cfg := web.Config{
		Addr: c.addr, PublicURL: c.publicURL, SecureCookies: c.secureCookies,
		ShutdownTimeout: c.shutdown,
	}
	if c.trustedOrigins != "" {
		cfg.TrustedOrigins = strings.Split(c.trustedOrigins, ",")
	}
	parts := &lifecycle{log: log}
	opts := wireParts(ctx, c, store, log, parts)
	srv := web.New(cfg, store, log, opts...)
	parts.add("http", srv)
	if err := parts.start(ctx); err != nil {
		parts.stop(context.Background())
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return parts.stop(context.Background())
}

// wireParts builds the parts around the HTTP server, in dependency order, and
// returns the server options that mount them; long-running parts join the
// lifecycle. The browser tests assemble the server through it too.
func wireParts(ctx context.Context, c serveConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) []web.Option {
	engine, opts := wireRouting(c.channels, store, log, parts)
	var enq enqueuer = unrouted{log: log}
	if engine != nil {
		enq = engine
	}
	opts = append(opts, wireHub(c.channels, store, log, parts)...)
	opts = append(opts, wireEmail(c, store, enq, log, parts)...)
	opts = append(opts, wireForms(c.channels, enq)...)
	opts = append(opts, web.WithAttachmentLimits(c.channels.attachmentMax, c.channels.widgetFileMax), web.WithBlobDir(c.channels.blobDir, c.channels.blobFileMin))
	wireUploadCleanup(c.channels, store, log, parts)
	opts = append(opts, web.WithChatDemo(demoWidgetID), web.WithUI(ui.Handler()))
	return opts
}

// startStopper is a long-running part of the server.
type startStopper interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// lifecycle starts parts in order and stops them in reverse.
type lifecycle struct {
	log     *slog.Logger
	names   []string
	parts   []startStopper
	started int
}

func (l *lifecycle) add(name string, p startStopper) {
	l.names = append(l.names, name)
	l.parts = append(l.parts, p)
}

func (l *lifecycle) start(ctx context.Context) error {
	for i, p := range l.parts {
		if err := p.Start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", l.names[i], err)
		}
		l.started = i + 1
	}
	return nil
}

func (l *lifecycle) stop(ctx context.Context) error {
	var errs []error
	for i := l.started - 1; i >= 0; i-- {
		if err := l.parts[i].Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", l.names[i], err))
		}
		l.log.Info("stopped", "part", l.names[i])
	}
	return errors.Join(errs...)
}
