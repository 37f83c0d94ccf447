package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that serialises migrations, so two
// processes starting at once apply each migration exactly once.
const migrationLock = 0x61676e74646b // "agntdk"

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	entries, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, path := range entries {
		base := strings.TrimSuffix(strings.TrimPrefix(path, "migrations/"), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNN_name.sql", path)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, path, v)
		}
		seen[v] = path
		body, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies every migration not yet applied, each in its own
// transaction, under a session advisory lock, then River's migrations (the
// job queue the email outbox runs on) in one transaction under the same lock.
// It returns the versions of our migrations applied; River keeps its own
// versions in river_migration (RiverStatus).
func Migrate(ctx context.Context, db *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck
	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied, err := appliedVersions(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	var done []int
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
		}
		done = append(done, m.Version)
	}
	if err := migrateRiver(ctx, conn.Conn()); err != nil {
		return done, err
	}
	return done, nil
}

// migrateRiver applies River's pending migrations on the locked connection,
// each in its own transaction (one of them adds an enum value a later one
// uses, which PostgreSQL allows only after a commit).
func migrateRiver(ctx context.Context, conn *pgx.Conn) error {
	mig, err := riverMigrator()
	if err != nil {
		return err
	}
	for _, v := range mig.AllVersions() {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			have, err := mig.ExistingVersionsTx(ctx, tx)
			if err != nil {
				return err
			}
			if len(have) > 0 && have[len(have)-1].Version >= v.Version {
				return nil
			}
			_, err = mig.MigrateTx(ctx, tx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: v.Version})
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate river %03d_%s: %w", v.Version, v.Name, err)
		}
	}
	return nil
}

// riverMigrator runs River's own migrations (rivermigrate) on our
// connection; River's schema is versioned by River, not by our numbered
// files, so upgrading River brings its schema changes along.
func riverMigrator() (*rivermigrate.Migrator[pgx.Tx], error) {
	// The driver's pool is only used by calls without a transaction, which
	// we never make: every River migration runs in our locked connection's tx.
	return rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{Logger: riverMigrateLog})
}

var riverMigrateLog = slog.New(slog.DiscardHandler)

// RiverStatus lists River's migrations and whether each is applied.
func RiverStatus(ctx context.Context, db *pgxpool.Pool) ([]MigrationStatus, error) {
	var out []MigrationStatus
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		mig, err := riverMigrator()
		if err != nil {
			return err
		}
		have, err := mig.ExistingVersionsTx(ctx, tx)
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for _, v := range have {
			applied[v.Version] = true
		}
		for _, v := range mig.AllVersions() {
			out = append(out, MigrationStatus{Migration: Migration{Version: v.Version, Name: strings.ReplaceAll(v.Name, " ", "_"), SQL: v.SQLUp}, Applied: applied[v.Version], River: true})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	return out, nil
}

func appliedVersions(ctx context.Context, conn *pgx.Conn) (map[int]bool, error) {
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	m := map[int]bool{}
	for _, v := range vs {
		m[v] = true
	}
	return m, nil
}

// MigrationStatus is one line of `agentdesk migrate status`.
type MigrationStatus struct {
	Migration
	Applied bool
	// River marks River's own migrations (numbered by River).
	River bool
}

// Status lists every embedded migration and whether it is applied, then
// River's (River set).
func Status(ctx context.Context, db *pgxpool.Pool) ([]MigrationStatus, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(ctx, createMigrationsTable); err != nil {
		return nil, err
	}
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	applied, err := appliedVersions(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, len(ms))
	for i, m := range ms {
		out[i] = MigrationStatus{Migration: m, Applied: applied[m.Version]}
	}
	river, err := RiverStatus(ctx, db)
	if err != nil {
		return nil, err
	}
	return append(out, river...), nil
}

// Pending reports how many embedded migrations are not applied; /readyz
// uses it.
func Pending(ctx context.Context, db *pgxpool.Pool) (int, error) {
	ms, err := Migrations()
	if err != nil {
		return 0, err
	}
	var n int
	err = db.QueryRow(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ANY($1)", versions(ms)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read applied migrations: %w", err)
	}
	river, err := RiverStatus(ctx, db)
	if err != nil {
		return 0, err
	}
	pending := len(ms) - n
	for _, r := range river {
		if !r.Applied {
			pending++
		}
	}
	return pending, nil
}

func versions(ms []Migration) []int {
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.Version
	}
	return vs
}

// RiverVersion is the newest River migration this binary applies.
func RiverVersion() int {
	mig, err := riverMigrator()
	if err != nil {
		return 0
	}
	all := mig.AllVersions()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}
