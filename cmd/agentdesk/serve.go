package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
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
}

func runServe(ctx context.Context, args []string) error {
	fs := newFlagSet("serve")
	var c serveConfig
	dbURL := databaseURLFlag(fs)
	fs.StringVar(&c.addr, "addr", "localhost:8080", "listen address for HTTP and websockets")
	fs.StringVar(&c.publicURL, "public-url", "", "URL browsers use to reach the server (default http://<addr>)")
	fs.BoolVar(&c.secureCookies, "secure-cookies", false, "mark session cookies Secure (set when served over HTTPS)")
	fs.StringVar(&c.trustedOrigins, "trusted-origins", "", "comma-separated extra origins allowed to make cookie-authenticated writes")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&c.dbMaxConns, "db-max-conns", 20, "maximum PostgreSQL connections of this process")
	fs.BoolVar(&c.migrate, "migrate", true, "apply pending migrations at start")
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 20*time.Second, "how long to wait for in-flight requests on SIGTERM")
	if err := parseFlags(fs, args); err != nil {
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

// wireParts builds the optional parts (routing, hub, email, UI) and returns
// the server options that mount them; long-running parts join the lifecycle.
// Each part adds itself in its own file's init via partWirers.
func wireParts(ctx context.Context, c serveConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) []web.Option {
	var opts []web.Option
	for _, w := range partWirers {
		opts = append(opts, w(ctx, c, store, log, parts)...)
	}
	return opts
}

// partWirers are run in registration order by wireParts.
var partWirers []func(ctx context.Context, c serveConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) []web.Option

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
