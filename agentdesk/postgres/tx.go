package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InTx runs fn in a transaction, committing if it returns nil. Functions
// that fn registers with AfterCommit run once the commit succeeded.
//
// The transaction is pipelined, which is why it is ours and not pgx's: BEGIN
// goes to the server together with the first statement fn runs, and the
// statements given to AtCommit (the hub's event rows) together with the
// COMMIT. A transaction of one statement and its events is then two round
// trips to the server instead of one for BEGIN, one for the statement, one
// per event and one for COMMIT. Each round trip is a wake-up of a backend
// and of this process; on a busy machine each is also a wait for a core,
// which is what makes a transaction's slow tail (BENCHMARKS.md, Routing).
// What the server executes, and in which order, is exactly what pgx's
// transaction would have it execute.
func InTx(ctx context.Context, db *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := runTx(ctx, db, fn)
	if err != nil {
		return err
	}
	// The connection is back in the pool: a hook may use one.
	for _, f := range tx.hooks.take() {
		f()
	}
	return nil
}

// runTx runs fn in a pipelinedTx on a connection of db and commits it.
func runTx(ctx context.Context, db *pgxpool.Pool, fn func(pgx.Tx) error) (*pipelinedTx, error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	// A connection left inside a transaction (a failed commit or rollback)
	// is destroyed by the pool rather than reused.
	defer conn.Release()
	tx := &pipelinedTx{conn: conn.Conn()}
	defer func() {
		if !tx.closed {
			// fn failed or panicked: what it did is undone. A rollback that
			// fails leaves the connection for the pool to drop.
			_ = tx.Rollback(ctx)
		}
	}()
	if err := fn(tx); err != nil {
		return nil, err
	}
	return tx, tx.Commit(ctx)
}

// AfterCommit arranges for f to run after tx commits, and reports whether it
// could: only transactions run by InTx have hooks. A rolled-back transaction
// runs none. Code that must do something outside the transaction once its
// change is visible (wake a dispatcher, signal another process) uses this
// instead of doing it inside the transaction, where a NOTIFY would hold
// PostgreSQL's cluster-wide commit lock.
func AfterCommit(tx pgx.Tx, f func()) bool {
	t := rootOf(tx)
	if t == nil {
		return false
	}
	t.hooks.add(f)
	return true
}

// AtCommit queues a statement that must commit with tx but whose result
// nobody reads (an event row), to be sent in the round trip of tx's COMMIT,
// in the order queued; it reports whether it could: only transactions run
// by InTx queue statements, so when it returns false the caller runs the
// statement itself, now. A queued statement that fails fails the commit,
// and the whole transaction rolls back. A savepoint queues nothing (false):
// what is done in it must be undone with it.
func AtCommit(tx pgx.Tx, sql string, args ...any) bool {
	t := rootOf(tx)
	if t == nil || t.closed {
		return false
	}
	t.atCommit = append(t.atCommit, &pgx.QueuedQuery{SQL: sql, Arguments: args})
	return true
}

// rootOf is tx as InTx's transaction, or nil: another transaction, or a
// savepoint (whose hooks and queued statements would outlive its rollback).
func rootOf(tx pgx.Tx) *pipelinedTx {
	t, _ := tx.(*pipelinedTx)
	return t
}

type commitHooks struct {
	mu  sync.Mutex
	fns []func()
}

func (h *commitHooks) add(f func()) {
	h.mu.Lock()
	h.fns = append(h.fns, f)
	h.mu.Unlock()
}

func (h *commitHooks) take() []func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	fns := h.fns
	h.fns = nil
	return fns
}

// pipelinedTx is InTx's transaction: a pgx.Tx that sends BEGIN with its
// first statement and its AtCommit statements with COMMIT. Like pgx's, it
// is used by one goroutine at a time.
type pipelinedTx struct {
	conn *pgx.Conn
	// begun: BEGIN has been sent. Until then the server has seen nothing
	// of the transaction, and a rollback has nothing to undo.
	begun      bool
	closed     bool
	atCommit   []*pgx.QueuedQuery
	hooks      commitHooks
	savepoints int
	// broken is why the transaction can no longer commit, found where no
	// error could be returned (Conn).
	broken error
}

// begin sends BEGIN on its own, for the few uses that cannot carry it
// with a statement (COPY, a savepoint, the raw connection).
func (t *pipelinedTx) begin(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	if t.begun {
		return nil
	}
	if _, err := t.conn.Exec(ctx, "begin"); err != nil {
		return err
	}
	t.begun = true
	return nil
}

// withBegin returns b, or, before the transaction has begun, a batch that
// sends BEGIN first and then b's statements.
func (t *pipelinedTx) withBegin(b *pgx.Batch) (*pgx.Batch, bool) {
	if t.begun {
		return b, false
	}
	t.begun = true
	qs := make([]*pgx.QueuedQuery, 0, len(b.QueuedQueries)+1)
	qs = append(qs, &pgx.QueuedQuery{SQL: "begin"})
	return &pgx.Batch{QueuedQueries: append(qs, b.QueuedQueries...)}, true
}

func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.closed {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	if t.begun {
		return t.conn.Exec(ctx, sql, args...)
	}
	if len(args) == 0 {
		// pgx sends a statement without arguments as a simple query, which
		// may hold several statements: BEGIN can lead them. The command
		// tag is the last statement's, as it would have been.
		t.begun = true
		return t.conn.Exec(ctx, "begin; "+sql)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.SendBatch(ctx, b)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	if t.begun {
		return t.conn.Query(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.SendBatch(ctx, b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := t.Query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

func (t *pipelinedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.closed {
		return &failedBatch{err: pgx.ErrTxClosed}
	}
	b, begins := t.withBegin(b)
	br := t.conn.SendBatch(ctx, b)
	if !begins {
		return br
	}
	return &begunBatch{BatchResults: br}
}

func (t *pipelinedTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	return t.conn.CopyFrom(ctx, table, columns, src)
}

// LargeObjects is not offered: pgx builds them only on its own
// transactions, and AgentDesk stores files as blobs on disk, not as large
// objects. The zero value fails on first use.
func (t *pipelinedTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (t *pipelinedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if t.closed {
		return nil, pgx.ErrTxClosed
	}
	return t.conn.Prepare(ctx, name, sql)
}

// Conn is the transaction's connection, inside the transaction: BEGIN is
// sent first if it has not been, so that what runs on the connection is part
// of it. (Conn has no context; a BEGIN that fails here fails the commit.)
func (t *pipelinedTx) Conn() *pgx.Conn {
	if err := t.begin(context.Background()); err != nil && t.broken == nil {
		t.broken = fmt.Errorf("begin: %w", err)
	}
	return t.conn
}

// Begin starts a savepoint, as pgx's nested transactions do.
func (t *pipelinedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	t.savepoints++
	sp := &savepointTx{root: t, name: fmt.Sprintf("sp_%d", t.savepoints)}
	if _, err := t.conn.Exec(ctx, "savepoint "+sp.name); err != nil {
		return nil, err
	}
	return sp, nil
}

// Commit sends the queued statements and COMMIT in one round trip (with
// BEGIN first, when nothing else was sent). A transaction that sent nothing
// and queued nothing has nothing to commit.
func (t *pipelinedTx) Commit(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	if t.broken != nil {
		err := t.broken
		t.Rollback(ctx) //nolint:errcheck // the error to return is broken
		return err
	}
	if !t.begun && len(t.atCommit) == 0 {
		t.closed = true
		return nil
	}
	b := &pgx.Batch{QueuedQueries: append(t.atCommit, &pgx.QueuedQuery{SQL: "commit"})}
	t.atCommit = nil
	br := t.SendBatch(ctx, b)
	t.closed = true
	var tag pgconn.CommandTag
	var err error
	for range b.QueuedQueries {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if t.conn.PgConn().TxStatus() != 'I' {
			// A statement failed before the COMMIT: the transaction is
			// aborted on the server. End it, or lose the connection.
			if _, rerr := t.conn.Exec(ctx, "rollback"); rerr != nil {
				_ = t.conn.Close(ctx)
			}
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (t *pipelinedTx) Rollback(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	t.closed = true
	t.atCommit = nil
	if !t.begun {
		return nil
	}
	if _, err := t.conn.Exec(ctx, "rollback"); err != nil {
		_ = t.conn.Close(ctx)
		return err
	}
	return nil
}

// savepointTx is a savepoint inside a pipelinedTx (whose BEGIN has been
// sent): its statements run on the transaction's connection.
type savepointTx struct {
	root   *pipelinedTx
	name   string
	closed bool
}

func (s *savepointTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if s.closed {
		return nil, pgx.ErrTxClosed
	}
	return s.root.Begin(ctx)
}

func (s *savepointTx) Commit(ctx context.Context) error {
	if s.closed {
		return pgx.ErrTxClosed
	}
	s.closed = true
	_, err := s.root.Exec(ctx, "release savepoint "+s.name)
	return err
}

func (s *savepointTx) Rollback(ctx context.Context) error {
	if s.closed {
		return pgx.ErrTxClosed
	}
	s.closed = true
	_, err := s.root.Exec(ctx, "rollback to savepoint "+s.name)
	return err
}

func (s *savepointTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if s.closed {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	return s.root.Exec(ctx, sql, args...)
}

func (s *savepointTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if s.closed {
		return nil, pgx.ErrTxClosed
	}
	return s.root.Query(ctx, sql, args...)
}

func (s *savepointTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := s.Query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

func (s *savepointTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if s.closed {
		return &failedBatch{err: pgx.ErrTxClosed}
	}
	return s.root.SendBatch(ctx, b)
}

func (s *savepointTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if s.closed {
		return 0, pgx.ErrTxClosed
	}
	return s.root.CopyFrom(ctx, table, columns, src)
}

func (s *savepointTx) LargeObjects() pgx.LargeObjects { return s.root.LargeObjects() }

func (s *savepointTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return s.root.Prepare(ctx, name, sql)
}

func (s *savepointTx) Conn() *pgx.Conn { return s.root.Conn() }

// begunBatch is the results of a batch that BEGIN leads: the caller reads
// the results of its own statements, so BEGIN's is read first, unseen.
type begunBatch struct {
	pgx.BatchResults
	read bool
	err  error
}

func (b *begunBatch) skipBegin() error {
	if !b.read {
		b.read = true
		_, b.err = b.BatchResults.Exec()
	}
	return b.err
}

func (b *begunBatch) Exec() (pgconn.CommandTag, error) {
	if err := b.skipBegin(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return b.BatchResults.Exec()
}

func (b *begunBatch) Query() (pgx.Rows, error) {
	if err := b.skipBegin(); err != nil {
		return nil, err
	}
	return b.BatchResults.Query()
}

func (b *begunBatch) QueryRow() pgx.Row {
	if err := b.skipBegin(); err != nil {
		return &row{err: err}
	}
	return b.BatchResults.QueryRow()
}

// failedBatch is the results of a batch that was never sent.
type failedBatch struct{ err error }

func (b *failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b *failedBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b *failedBatch) QueryRow() pgx.Row                { return &row{err: b.err} }
func (b *failedBatch) Close() error                     { return b.err }
func (b *failedBatch) Tx() pgx.Tx                       { return nil }

// batchRows are the rows of a query sent in a batch with BEGIN; closing
// them closes the batch, which frees the connection.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// row is QueryRow's result, read as pgx reads its own: no row is
// pgx.ErrNoRows, and the rows are closed after the scan.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
