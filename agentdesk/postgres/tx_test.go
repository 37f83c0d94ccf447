package postgres_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// roundTrips counts the times a client sends after it has read: each is
// one trip to the server and back.
type roundTrips struct{ n atomic.Int64 }

type countingConn struct {
	net.Conn
	rt   *roundTrips
	read atomic.Bool
}

func (c *countingConn) Write(b []byte) (int, error) {
	if c.read.Swap(false) {
		c.rt.n.Add(1)
	}
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}

// txPool is a pool of one connection to a fresh database with a table t,
// whose round trips are counted from the moment it is returned.
func txPool(t *testing.T) (*pgxpool.Pool, *roundTrips) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, rt: rt}, nil
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	// Warm the connection: the statements below are prepared on first use,
	// which costs a round trip of its own once per connection.
	for range 2 {
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, -1); err != nil {
				return err
			}
			postgres.AtCommit(tx, `DELETE FROM t WHERE id = $1`, -1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rt.n.Store(0)
	return pool, rt
}

func ids(t *testing.T, db *pgxpool.Pool) []int {
	t.Helper()
	rows, _ := db.Query(context.Background(), `SELECT id FROM t ORDER BY id`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A statement and a statement queued for the commit are two round trips:
// BEGIN goes with the statement, the queued one with COMMIT. And it is one
// transaction: another connection sees nothing until it commits.
func TestInTxIsTwoRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, rt := txPool(t)
	other, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	var seenInside int
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		if !postgres.AtCommit(tx, `INSERT INTO t (id) VALUES ($1)`, 2) {
			t.Error("AtCommit refused InTx's transaction")
		}
		// Not visible elsewhere: the insert ran inside the transaction.
		return other.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&seenInside)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 2 {
		t.Errorf("round trips: %d, want 2 (BEGIN with the insert; the queued insert with COMMIT)", n)
	}
	if seenInside != 0 {
		t.Errorf("another connection saw %d rows before the commit", seenInside)
	}
	if got := ids(t, pool); !equal(got, []int{1, 2}) {
		t.Errorf("rows after commit: %v, want [1 2]", got)
	}
}

// A transaction that runs nothing costs nothing; one that only queues
// sends BEGIN, its statements and COMMIT together.
func TestInTxWithoutStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, rt := txPool(t)
	if err := postgres.InTx(ctx, pool, func(pgx.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 0 {
		t.Errorf("an empty transaction made %d round trips", n)
	}
	// The second time, when the update is prepared on the connection.
	for id := range 2 {
		rt.n.Store(0)
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			postgres.AtCommit(tx, `INSERT INTO t (id) VALUES ($1)`, id)
			postgres.AtCommit(tx, `UPDATE t SET note = $2 WHERE id = $1`, id, "in order")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.n.Load(); n != 1 {
		t.Errorf("a queued-only transaction made %d round trips, want 1", n)
	}
	var note string
	if err := pool.QueryRow(ctx, `SELECT note FROM t WHERE id = 1`).Scan(&note); err != nil || note != "in order" {
		t.Errorf("queued statements ran out of order or not at all: %q, %v", note, err)
	}
}

// A queued statement that fails fails the commit, with the server's error,
// and nothing of the transaction is stored; the connection is fine after.
func TestInTxQueuedStatementFailsTheCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := txPool(t)
	hookRan := false
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		postgres.AfterCommit(tx, func() { hookRan = true })
		postgres.AtCommit(tx, `INSERT INTO t (id) VALUES ($1)`, 1) // duplicate key
		return nil
	})
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "23505" {
		t.Fatalf("commit error: %v, want the unique violation", err)
	}
	if hookRan {
		t.Error("an after-commit hook ran for a failed commit")
	}
	if got := ids(t, pool); len(got) != 0 {
		t.Errorf("rows after a failed commit: %v", got)
	}
}

// Every way of running statements works before and after BEGIN was sent,
// and statements see what the earlier ones did.
func TestInTxStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := txPool(t)
	for name, first := range map[string]func(tx pgx.Tx) error{
		"exec with arguments": func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1)
			return err
		},
		"exec of several statements": func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '5s'; INSERT INTO t (id) VALUES (1)`)
			if err == nil && tag.RowsAffected() != 1 {
				t.Errorf("command tag %q, want the insert's", tag)
			}
			return err
		},
		"query": func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `INSERT INTO t (id) VALUES ($1) RETURNING id`, 1)
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err == nil && !equal(got, []int{1}) {
				t.Errorf("query returned %v", got)
			}
			return err
		},
		"query row": func(tx pgx.Tx) error {
			var id int
			err := tx.QueryRow(ctx, `INSERT INTO t (id) VALUES ($1) RETURNING id`, 1).Scan(&id)
			if err == nil && id != 1 {
				t.Errorf("query row returned %d", id)
			}
			return err
		},
		"batch": func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO t (id) VALUES ($1)`, 1)
			b.Queue(`SELECT count(*) FROM t`)
			br := tx.SendBatch(ctx, b)
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
			var n int
			if err := br.QueryRow().Scan(&n); err != nil || n != 1 {
				t.Errorf("batch read %d rows, %v", n, err)
			}
			return br.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := pool.Exec(ctx, `TRUNCATE t`); err != nil {
				t.Fatal(err)
			}
			err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
				if err := first(tx); err != nil {
					return err
				}
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM t WHERE id = $1`, 1).Scan(&n); err != nil {
					return err
				}
				if n != 1 {
					t.Errorf("the second statement saw %d rows of the first's", n)
				}
				if err := tx.QueryRow(ctx, `SELECT id FROM t WHERE id = $1`, 99).Scan(&n); !errors.Is(err, pgx.ErrNoRows) {
					t.Errorf("no row: %v, want pgx.ErrNoRows", err)
				}
				_, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 2)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(t, pool); !equal(got, []int{1, 2}) {
				t.Errorf("rows: %v, want [1 2]", got)
			}
		})
	}
}

// An error or a panic in fn, or a failing first statement, rolls back, and
// the pool's one connection serves the next transaction.
func TestInTxRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := txPool(t)
	boom := errors.New("boom")
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		postgres.AtCommit(tx, `INSERT INTO t (id) VALUES ($1)`, 2)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
	func() {
		defer func() { recover() }()                     //nolint:errcheck
		postgres.InTx(ctx, pool, func(tx pgx.Tx) error { //nolint:errcheck
			tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 3) //nolint:errcheck
			panic("fn panics")
		})
	}()
	err = postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO nowhere (id) VALUES ($1)`, 4)
		return err
	})
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "42P01" {
		t.Fatalf("first statement's error: %v, want undefined table", err)
	}
	if got := ids(t, pool); len(got) != 0 {
		t.Errorf("rows after three rolled-back transactions: %v", got)
	}
	if err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 5)
		return err
	}); err != nil {
		t.Fatalf("the connection after the rollbacks: %v", err)
	}
	if got := ids(t, pool); !equal(got, []int{5}) {
		t.Errorf("rows: %v, want [5]", got)
	}
}

// Savepoints (pgx's nested transactions) undo only their own part, and
// queue nothing for the commit that their rollback could not take back.
func TestInTxSavepoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := txPool(t)
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := sp.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		if err := sp.Commit(ctx); err != nil {
			return err
		}
		sp, err = tx.Begin(ctx)
		if err != nil {
			return err
		}
		if postgres.AtCommit(sp, `INSERT INTO t (id) VALUES ($1)`, 3) || postgres.AfterCommit(sp, func() {}) {
			t.Error("a savepoint queued a statement or a hook that its rollback would not undo")
		}
		if _, err := sp.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err == nil {
			t.Error("a duplicate key inside a savepoint was accepted")
		}
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 2)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, pool); !equal(got, []int{1, 2}) {
		t.Errorf("rows: %v, want [1 2]", got)
	}
}

// Outside InTx, nothing is queued: the caller runs the statement itself.
func TestAtCommitOutsideInTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := txPool(t)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if postgres.AtCommit(tx, `INSERT INTO t (id) VALUES ($1)`, 1) {
			t.Error("AtCommit queued on a transaction that is not InTx's")
		}
		if postgres.AfterCommit(tx, func() {}) {
			t.Error("AfterCommit took a transaction that is not InTx's")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// After-commit hooks run once the connection is back in the pool, so a
// hook may use the pool even when the transaction held its last
// connection.
func TestAfterCommitHooksRunWithTheConnectionReturned(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, _ := txPool(t) // one connection
	var n int
	var hookErr error
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES ($1)`, 1); err != nil {
			return err
		}
		postgres.AfterCommit(tx, func() { hookErr = pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if hookErr != nil || n != 1 {
		t.Fatalf("the hook read %d rows, %v; want the committed row", n, hookErr)
	}
}
