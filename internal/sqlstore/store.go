// Package sqlstore is the account store, written once for every SQL
// database the service runs on. A Dialect supplies only what really
// differs between them: the text of a few statements (placeholders, lists
// of values, row locks), the codec of timestamps, how errors are told
// apart, and the locking and retry strategy of transactions. Everything
// else, the statements themselves and every rule of how rows change
// together, is here once. The dialects are internal/sqlite (the embedded
// default) and internal/postgres.
//
// # Why database/sql with a dialect seam
//
// The store talks to both databases through database/sql: modernc.org/sqlite
// is a database/sql driver, and pgx ships one (pgx/v5/stdlib) beside its
// native interface. That gives one set of Go types for connections,
// transactions and rows, so the store's Go code is the same for both. The
// shape follows pressly/goose's internal/dialect store: one store, and a
// small value per dialect. Code generation (sqlc) was the other choice;
// it generates one query set and one Go layer per engine, which is the
// duplication this package removes.
//
// # Statements
//
// Statements are written with ? placeholders; the dialect rebinds them
// (PostgreSQL's $1, $2…) once per statement text. A list of values is one
// parameter (a JSON array that SQLite's json_each reads, a PostgreSQL
// array), so a lookup of a thousand ids is one statement.
//
// # Transactions
//
// A write transaction writes its events last, just before its commit. On
// SQLite it is a database/sql Tx. A dialect that is a CommitPipeliner
// (PostgreSQL) has the store begin and end its write transactions itself,
// on a connection it holds, so that the insert of the events and the
// COMMIT go to the server in one round trip, which a Tx cannot do.
//
// # Ids and text
//
// Ids of users and devices are UUIDs in canonical form, the only form in
// which the service hands them out; any other string names no row, and a
// lookup by one answers ENotFound without a statement. Text that a
// database cannot hold (a NUL character, invalid UTF-8) names no row
// either, and is refused as EInvalid in a write: the two databases would
// otherwise answer it differently.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/migration"
)

// Client-safe messages.
const (
	msgUnavailable       = "Service temporarily unavailable"
	msgEmailTaken        = "A user with this email already exists"
	msgConflict          = "A conflicting record already exists"
	msgUserNotFound      = "User not found"
	msgDeviceNotFound    = "Device not found"
	msgRefreshNotFound   = "Refresh token not found"
	msgFamilyNotFound    = "Refresh token family not found"
	msgReferenceNotFound = "Referenced record not found"
	msgBadText           = "Text must be valid UTF-8 without NUL characters"
)

// ErrorKind is what a dialect makes of a driver error.
type ErrorKind int

// Kinds of driver errors.
const (
	KindOther       ErrorKind = iota // anything else: an internal error
	KindEmailTaken                   // the unique constraint on users.email
	KindConflict                     // another unique constraint
	KindForeignKey                   // a foreign key that names no row
	KindUnavailable                  // the database cannot be used right now
	KindRetry                        // a deadlock or serialization failure: run the transaction again
)

// Dialect is what differs between the databases.
type Dialect interface {
	// Name names the dialect in errors ("sqlite", "postgres").
	Name() string
	// Rebind turns the ? placeholders of q into the dialect's.
	Rebind(q string) string
	// Time is t as a statement parameter. Times are scanned back through
	// a scanner that reads either form (see timeCol).
	Time(t time.Time) any
	// List is values (a []string or a []int64) as one statement
	// parameter, read by InList.
	List(values any) any
	// InList is the condition "col is one of the list parameter".
	InList(col string) string
	// Lock is appended to a SELECT to hold its rows until the transaction
	// ends: against writers when share, else against other lockers too
	// ("" where transactions never overlap).
	Lock(share bool) string
	// LockTokens holds, until tx ends, a lock per push token, in one order
	// for every transaction, so that two transactions moving one token run
	// one after the other. A no-op where transactions never overlap.
	LockTokens(ctx context.Context, tx Execer, tokens []string) error
	// InsertEvents is the one statement that writes n events, each given
	// as six parameters (id, type, subject, time, data, traceparent: a
	// text or NULL). Where
	// transactions overlap it first takes, until the transaction ends, the
	// lock under which events are written, so that positions commit in
	// order; where the database can, it also tells the other processes,
	// on commit, that events were written.
	InsertEvents(n int) string
	// ListenEvents calls wake whenever another process's NotifyEvents
	// commits, until ctx ends; it returns at once where there are no
	// notifications.
	ListenEvents(ctx context.Context, db *sql.DB, wake func())
	// Classify says what err, returned by the driver, is.
	Classify(err error) ErrorKind
	// MigrationsTable is the statement that creates the table recording
	// applied migrations (version, name, applied_at), if it is missing.
	MigrationsTable() string
	// LockMigrations holds a lock on conn that keeps other processes from
	// migrating until the returned function is called (a no-op where
	// each migration's transaction already excludes them).
	LockMigrations(ctx context.Context, conn *sql.Conn) (unlock func() error, err error)
	// Migrations are the dialect's embedded migration files, by number.
	Migrations() ([]migration.File, error)
}

// Execer runs a statement: a transaction or a connection.
type Execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// maxTxAttempts is how many times a transaction that the database aborted
// for a deadlock or a serialization failure is run.
const maxTxAttempts = 3

// Store is the account store on one database.
type Store struct {
	d     Dialect
	write *sql.DB // transactions and writes
	read  *sql.DB // reads; may be write itself

	// BeforeStatement, when set, is called before each statement a
	// transaction runs, with the statement's operation and text; an
	// error fails the statement. It lets tests break a transaction in
	// its middle.
	BeforeStatement func(op, query string) error

	// EventsPoll is how often EventsChanged looks for events committed by
	// other processes (default 1 s); set it before the first call.
	EventsPoll time.Duration

	// PruneBatch is the most events one transaction of PruneEvents
	// deletes (default 5,000: tens of milliseconds of SQLite's writer).
	PruneBatch int

	rebound   sync.Map // statement text → rebound text
	changed   signal   // woken when events may have been committed
	discard   bool     // write no events (benchmarks only)
	watchOnce sync.Once
	stopWatch context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// eventStmts[n] is the prepared insert of n events, up to
	// preparedEvents, for write transactions that are database/sql Txs.
	eventStmts [preparedEvents + 1]atomic.Pointer[sql.Stmt]
}

// New returns the store over write (for writes and transactions) and read
// (for reads; may be the same *sql.DB). The store owns both: Close closes
// them.
func New(d Dialect, write, read *sql.DB) *Store {
	if read == nil {
		read = write
	}
	return &Store{d: d, write: write, read: read}
}

// DB returns the database/sql handle writes go through.
func (s *Store) DB() *sql.DB { return s.write }

// ReadDB returns the database/sql handle reads go through.
func (s *Store) ReadDB() *sql.DB { return s.read }

// Close releases the store's connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.watchOnce.Do(func() {}) // no watcher starts after Close
		if s.stopWatch != nil {
			s.stopWatch()
		}
		s.closeErr = s.closeEventStmts()
		if s.read != s.write {
			s.closeErr = errors.Join(s.closeErr, s.read.Close())
		}
		s.closeErr = errors.Join(s.closeErr, s.write.Close())
	})
	return s.closeErr
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	_, err := one(s.reader(ctx, "ping"), "", scanInto(new(int)), "SELECT 1")
	return s.fail(ctx, "ping", err)
}

// Stats reports the connections of the store, both pools added together
// when reads have their own.
func (s *Store) Stats() sql.DBStats {
	w := s.write.Stats()
	if s.read == s.write {
		return w
	}
	r := s.read.Stats()
	return sql.DBStats{
		MaxOpenConnections: r.MaxOpenConnections + w.MaxOpenConnections,
		OpenConnections:    r.OpenConnections + w.OpenConnections,
		InUse:              r.InUse + w.InUse,
		Idle:               r.Idle + w.Idle,
		WaitCount:          r.WaitCount + w.WaitCount,
		WaitDuration:       r.WaitDuration + w.WaitDuration,
	}
}

// q is the rebound text of the statement q, computed once per text.
func (s *Store) q(q string) string {
	if v, ok := s.rebound.Load(q); ok {
		return v.(string)
	}
	r := s.d.Rebind(q)
	s.rebound.Store(q, r)
	return r
}

// tx runs the statements of one operation, in a transaction or (for
// reads) on the pool of readers. Statements are rebound; in a
// transaction, BeforeStatement may fail them.
type tx struct {
	s  *Store
	db interface {
		Execer
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	}
	op   string
	ctx  context.Context
	hook bool
	// events are written when the transaction commits.
	events []pendingEvent
	// prepare is how many events the transaction wrote with a statement
	// that was not prepared, for one to be prepared once it has committed.
	prepare int
}

// reader is the reads of op, on the pool of readers.
func (s *Store) reader(ctx context.Context, op string) *tx {
	return &tx{s: s, db: s.read, op: op, ctx: ctx}
}

func (t *tx) check(q string) error {
	if t.hook && t.s.BeforeStatement != nil {
		return t.s.BeforeStatement(t.op, q)
	}
	return nil
}

func (t *tx) exec(q string, args ...any) (int64, error) {
	if err := t.check(q); err != nil {
		return 0, err
	}
	res, err := t.db.ExecContext(t.ctx, t.s.q(q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *tx) query(q string, args ...any) (*sql.Rows, error) {
	if err := t.check(q); err != nil {
		return nil, err
	}
	return t.db.QueryContext(t.ctx, t.s.q(q), args...)
}

// all runs q and scans every row it returns.
func all[T any](t *tx, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, rows.Close()
}

// one runs q and scans its first row; ENotFound with msg when there is none.
func one[T any](t *tx, msg string, scan func(rowScanner) (T, error), q string, args ...any) (T, error) {
	vs, err := all(t, scan, q, args...)
	if err == nil && len(vs) == 0 {
		err = notFound(msg)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return vs[0], nil
}

// scanID reads a row of one text column.
func scanID(r rowScanner) (string, error) {
	var id string
	err := r.Scan(&id)
	return id, err
}

// scanInto returns a scanner of a row into dest, for one.
func scanInto(dest ...any) func(rowScanner) (bool, error) {
	return func(r rowScanner) (bool, error) { return true, r.Scan(dest...) }
}

// inTx runs fn in a write transaction and commits it when fn returns nil.
// A transaction that the database aborted for a deadlock or a
// serialization failure runs again, up to maxTxAttempts times; fn must
// therefore only hand its results to the caller once it has nothing left
// to fail.
func (s *Store) inTx(ctx context.Context, op string, fn func(t *tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, op, fn)
		var ue *usersvc.Error
		if err == nil || errors.As(err, &ue) || s.d.Classify(err) != KindRetry || attempt == maxTxAttempts || ctx.Err() != nil {
			return s.fail(ctx, op, err)
		}
	}
}

func (s *Store) runTx(ctx context.Context, op string, fn func(t *tx) error) error {
	if p, ok := s.d.(CommitPipeliner); ok {
		return s.runPipelinedTx(ctx, p, op, fn)
	}
	return s.runTxOn(ctx, s.write, op, fn)
}

// CommitPipeliner is a Dialect whose driver can send a statement and the
// COMMIT after it in one round trip. database/sql's Tx sends its COMMIT on
// its own, so that the insert of a transaction's events, the last
// statement before it, would cost one round trip more than the change
// alone; with a CommitPipeliner the store begins and ends its write
// transactions itself, on a connection it holds for the transaction.
type CommitPipeliner interface {
	// CommitWith sends q with args (nothing when q is empty) and then
	// COMMIT on conn, where the store has begun a transaction, in one
	// round trip. It returns an error when either fails or the commit
	// rolled back; the store then rolls the transaction back.
	CommitWith(ctx context.Context, conn *sql.Conn, q string, args []any) error
}

// rollbackTimeout bounds the rollback of a transaction that failed, after
// which its connection is closed instead of being returned to the pool.
const rollbackTimeout = 5 * time.Second

// runPipelinedTx is runTxOn for a CommitPipeliner: BEGIN, fn's statements,
// then the insert of its events and the COMMIT in one round trip.
func (s *Store) runPipelinedTx(ctx context.Context, p CommitPipeliner, op string, fn func(t *tx) error) error {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return err
	}
	ended := false
	defer func() {
		if !ended { // an error, or a panic, with the transaction open
			abandon(ctx, conn)
		}
		_ = conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	t := &tx{s: s, db: conn, op: op, ctx: ctx, hook: true}
	if err := fn(t); err != nil {
		return err
	}
	q, args, err := t.eventsInsert()
	if err != nil {
		return err
	}
	if q != "" {
		if err := t.check(q); err != nil {
			return err
		}
		q = s.q(q)
	}
	if err := p.CommitWith(ctx, conn, q, args); err != nil {
		return err // a refused insert leaves the transaction open: abandoned
	}
	ended = true
	if len(t.events) > 0 {
		s.changed.wake()
	}
	return nil
}

// abandon rolls back the transaction open on conn (after a failed COMMIT
// there may be none left, and the ROLLBACK does nothing); a connection on
// which that fails is marked bad, so that the pool closes it rather than hand
// out a connection inside a transaction.
func abandon(ctx context.Context, conn *sql.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if _, err := conn.ExecContext(rctx, "ROLLBACK"); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// runTxOn runs fn in a transaction that db begins, and commits it when fn
// returns nil.
func (s *Store) runTxOn(ctx context.Context, db interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, op string, fn func(t *tx) error) error {
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	t := &tx{s: s, db: sqlTx, op: op, ctx: ctx, hook: true}
	if err := fn(t); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := t.flushEvents(); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return err
	}
	if len(t.events) > 0 {
		s.changed.wake()
	}
	if t.prepare > 0 && db == s.write { // with the connection back in the pool
		s.prepareEvents(ctx, t.prepare)
	}
	return nil
}

// execTx runs one statement in its own transaction and returns how many
// rows it changed; ENotFound with msg (unless empty) when none.
func (s *Store) execTx(ctx context.Context, op, msg, q string, args ...any) (n int64, err error) {
	err = s.inTx(ctx, op, func(t *tx) error {
		if n, err = t.exec(q, args...); err == nil && n == 0 && msg != "" {
			err = notFound(msg)
		}
		return err
	})
	return n, err
}

// readTx runs fn in a read transaction: every statement of fn sees one
// snapshot.
func (s *Store) readTx(ctx context.Context, op string, fn func(t *tx) error) error {
	sqlTx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.read == s.write})
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer func() { _ = sqlTx.Rollback() }()
	return s.fail(ctx, op, fn(&tx{s: s, db: sqlTx, op: op, ctx: ctx}))
}

// fail turns a driver error into the error the store returns: an
// *usersvc.Error for the cases callers act on, else an internal error that
// wraps the cause. An *usersvc.Error passes through unchanged.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var ue *usersvc.Error
	if errors.As(err, &ue) {
		return err
	}
	cause := fmt.Errorf("%s: %s: %w", s.d.Name(), op, err)
	switch kind := s.d.Classify(err); {
	case kind == KindEmailTaken:
		return &usersvc.Error{Code: usersvc.EConflict, Message: msgEmailTaken, Err: cause}
	case kind == KindConflict:
		return &usersvc.Error{Code: usersvc.EConflict, Message: msgConflict, Err: cause}
	case kind == KindForeignKey:
		return &usersvc.Error{Code: usersvc.ENotFound, Message: msgReferenceNotFound, Err: cause}
	case kind == KindUnavailable, s.closed.Load(), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The database cannot be used right now.
		return &usersvc.Error{Code: usersvc.EUnavailable, Message: msgUnavailable, Err: cause}
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %s: %w", s.d.Name(), op, errors.Join(ctx.Err(), err))
	}
	return cause
}

func notFound(msg string) error {
	return &usersvc.Error{Code: usersvc.ENotFound, Message: msg}
}

// badText is the error for a write of text the store cannot hold.
func badText(field string) error {
	return &usersvc.Error{Code: usersvc.EInvalid, Message: msgBadText,
		Fields: map[string][]string{field: {msgBadText}}}
}

// isUUID reports whether id is a UUID in canonical form (lowercase, with
// hyphens), the only form in which ids are handed out.
func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// uuids returns the ids that are UUIDs.
func uuids(ids []string) []string { return keep(ids, isUUID) }

// keep returns the values for which ok holds, in a new slice.
func keep(values []string, ok func(string) bool) []string {
	return slices.DeleteFunc(slices.Clone(values), func(v string) bool { return !ok(v) })
}

// goodText reports whether every s can be stored as text: valid UTF-8
// without NUL.
func goodText(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// goodTexts returns the values that goodText accepts.
func goodTexts(values []string) []string {
	return keep(values, func(v string) bool { return goodText(v) })
}

// distinctIDs returns ids without repeats and without except (which may be
// empty), in no set order; nil when none remain. It reorders ids.
func distinctIDs(ids []string, except string) []string {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == except })
	if len(ids) == 0 {
		return nil
	}
	return ids
}

// ts is t as the store keeps it: UTC, truncated to microseconds.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime scans a stored time that may be NULL, read as the zero time.
type nullTime struct{ t time.Time }

func (c *nullTime) Scan(src any) error {
	if src == nil {
		c.t = time.Time{}
		return nil
	}
	return timeCol{&c.t}.Scan(src)
}

// optTime scans a stored time that may be NULL into a pointer, nil for
// NULL.
type optTime struct{ t **time.Time }

func (c optTime) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	var v time.Time
	if err := (timeCol{&v}).Scan(src); err != nil {
		return err
	}
	*c.t = &v
	return nil
}

// optTime is the value of a time that may be nil, as the dialect stores it.
func (s *Store) optTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.d.Time(*t)
}

// timeCol scans a stored time in either form a dialect keeps it:
// INTEGER microseconds since the Unix epoch, or a timestamp.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = ts(v)
	default:
		return fmt.Errorf("time column holds %T", src)
	}
	return nil
}
