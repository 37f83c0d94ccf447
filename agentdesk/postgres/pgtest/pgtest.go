// Package pgtest gives each test its own PostgreSQL database, cloned from a
// migrated template, so tests run in parallel against the real schema.
//
// The server is AGENTDESK_TEST_DATABASE_URL when set (make test starts a
// throwaway cluster and sets it); otherwise a private cluster under the
// module's .data/testpg is started or reused through scripts/pg.sh, so a plain
// `go test ./routing/...` works on its own.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk/postgres"
)

// EnvURL names the variable that points tests at a server.
const EnvURL = "AGENTDESK_TEST_DATABASE_URL"

// privatePort is the port of the private test cluster started on demand.
const privatePort = "54330"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// ServerURL returns the URL of the test server's maintenance database,
// starting the private cluster if needed.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			serverURL = u
			return
		}
		root, err := moduleRoot()
		if err != nil {
			serverErr = err
			return
		}
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "pg.sh"), "start", filepath.Join(root, ".data", "testpg"), privatePort, "fast")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			serverErr = fmt.Errorf("start private test PostgreSQL: %w", err)
			return
		}
		serverURL = strings.TrimSpace(string(out))
	})
	if serverErr != nil {
		tb.Fatal(serverErr)
	}
	return serverURL
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("pgtest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// withDatabase returns u with its database name replaced.
func withDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.Path = "/" + name
	return p.String()
}

// template builds (once per server and migration set) a migrated template
// database. Several test processes may race here; an advisory lock and a
// build-then-rename keep a half-built template from ever being cloned.
func template(tb testing.TB) string {
	tb.Helper()
	server := ServerURL(tb)
	templateOnce.Do(func() {
		ms, err := postgres.Migrations()
		if err != nil {
			templateErr = err
			return
		}
		h := sha256.New()
		for _, m := range ms {
			fmt.Fprintf(h, "%d %s\n%s\n", m.Version, m.Name, m.SQL)
		}
		fmt.Fprintf(h, "river %d\n", postgres.RiverVersion()) // a River upgrade rebuilds the template
		name := "agentdesk_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]
		templateErr = buildTemplate(server, name)
		templateName = name
	})
	if templateErr != nil {
		tb.Fatal(templateErr)
	}
	return templateName
}

func buildTemplate(server, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(424242)"); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(424242)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, withDatabase(server, building), 2)
	if err != nil {
		return err
	}
	_, err = postgres.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return fmt.Errorf("pgtest: migrate template: %w", err)
	}
	_, err = conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name)
	return err
}

// NewURL creates a fresh, migrated database for this test and returns its URL.
// The database is dropped when the test ends.
func NewURL(tb testing.TB) string {
	tb.Helper()
	server := ServerURL(tb)
	tmpl := template(tb)
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	// Concurrent clones of one template can briefly see each other as users of
	// it; retry instead of failing the test.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			tb.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(server, name)
}

// New creates a fresh, migrated database for this test and returns a pool on
// it, closed when the test ends.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	u := NewURL(tb)
	pool, err := postgres.Open(context.Background(), u, 8)
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// EmptyURL creates an empty database (no migrations) for migration tests.
func EmptyURL(tb testing.TB) string {
	tb.Helper()
	server := ServerURL(tb)
	var b [6]byte
	rand.Read(b[:])
	name := "e_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), server)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck
			c.Close(context.Background())
		}
	})
	return withDatabase(server, name)
}
