package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
	"agentdesk/web"
)

// accountDB is a fresh database with one account and its admin: where the
// tests that run `serve` (or its parts) start from.
type accountDB struct {
	url   string
	db    *pgxpool.Pool
	store *postgres.Store
	acct  *agentdesk.Account
	admin *agentdesk.Agent
}

// newAccountDB creates the database, the account name and its admin
// (admin@<domain>), with a pool of maxConns for the test's own queries.
func newAccountDB(t *testing.T, name, domain string, maxConns int32) *accountDB {
	t.Helper()
	ctx := context.Background()
	a := &accountDB{url: pgtest.NewURL(t)}
	var err error
	if a.db, err = postgres.Open(ctx, a.url, maxConns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.db.Close)
	a.store = postgres.NewStore(a.db)
	if a.acct, err = a.store.CreateAccount(ctx, name); err != nil {
		t.Fatal(err)
	}
	a.admin = &agentdesk.Agent{Email: "admin@" + domain, Name: "Admin", Role: agentdesk.RoleAdmin}
	if err := a.store.CreateAgent(ctx, a.acct.ID, a.admin, ""); err != nil {
		t.Fatal(err)
	}
	return a
}

// token creates an API token of role, made by the admin, and returns its
// secret.
func (a *accountDB) token(t *testing.T, name string, role agentdesk.Role) string {
	t.Helper()
	_, secret, err := web.CreateAPIToken(context.Background(), a.store,
		agentdesk.Actor{AccountID: a.acct.ID, AgentID: a.admin.ID, Role: agentdesk.RoleAdmin}, name, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// startServeChild starts `agentdesk serve` (this test binary as the
// command, see TestServeChildProcess) on url in the working directory dir
// ("" for this one) with args besides --addr and --database-url, and
// returns its base URL once it is ready. The process gets SIGTERM when the
// test ends, and its log is shown if the test failed.
func startServeChild(t *testing.T, url, dir string, args ...string) string {
	t.Helper()
	bin, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var logs syncBuffer
	cmd := exec.Command(bin, "-test.run=^TestServeChildProcess$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), serveChildEnv+"=--addr "+addr+" --database-url "+url+" "+strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		<-exited
		if t.Failed() {
			t.Logf("server %s log:\n%s", addr, logs.String())
		}
	})
	base := "http://" + addr
	waitReady(t, base, exited)
	return base
}

// serveInProcess runs serve's parts and its HTTP server in this process,
// wired as `agentdesk serve` wires them (wireParts), on dbURL with the
// channel settings ch. A nil log discards; prepare, if not nil, may adjust
// the parts before they start (an injected clock). It returns the base URL;
// the server and the parts stop when the test ends.
func serveInProcess(t *testing.T, dbURL string, store *postgres.Store, ch channelConfig, log *slog.Logger, prepare func(*lifecycle)) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	c := serveConfig{databaseURL: dbURL, addr: addr, publicURL: "http://" + addr, shutdown: 5 * time.Second, channels: ch}
	parts := &lifecycle{log: log}
	opts := wireParts(ctx, c, store, log, parts)
	srv := web.New(web.Config{Addr: addr, PublicURL: c.publicURL, ShutdownTimeout: c.shutdown}, store, log, opts...)
	if prepare != nil {
		prepare(parts)
	}
	if err := parts.start(ctx); err != nil {
		t.Fatalf("start parts: %v", err)
	}
	if err := srv.Serve(ctx, ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Stop(context.Background())   //nolint:errcheck
		parts.stop(context.Background()) //nolint:errcheck
	})
	return "http://" + addr
}
