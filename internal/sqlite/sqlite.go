// Package sqlite is the account store on SQLite, the embedded default.
//
// The database is one file in WAL mode. Writes go through a single
// connection whose transactions all start with BEGIN IMMEDIATE, so writers
// in this process queue in Go and writers in other processes wait on the
// busy timeout instead of failing with SQLITE_BUSY. Reads use a separate
// pool of read-only connections, which WAL lets run beside the writer.
//
// Timestamps are stored as INTEGER microseconds since the Unix epoch and
// come back in UTC. Callers should pass times already truncated to
// microseconds; the store truncates anyway, so a value read back always
// equals the one written at that precision.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usersvc/usersvc"
)

// busyTimeout is how long a statement waits for a lock held by another
// connection (another process, or the writer while a reader checkpoints).
const busyTimeout = 5 * time.Second

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
)

// Store is the account store on one SQLite file.
type Store struct {
	write *sql.DB // exactly one connection; transactions are IMMEDIATE
	read  *sql.DB // read-only connections

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it and its parent directory when needed) the
// database file at path. It does not migrate: call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q is not a database file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resolve %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, unavailable("open", fmt.Errorf("create database directory: %w", err))
	}

	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
		"synchronous(NORMAL)",
	}
	wq := url.Values{"_pragma": append([]string{"journal_mode(WAL)"}, pragmas...), "_txlock": {"immediate"}}
	rq := url.Values{"_pragma": append([]string{"query_only(1)"}, pragmas...)}

	write, err := sql.Open("sqlite", dsn(abs, wq))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	s := &Store{write: write}
	var mode string
	if err := write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = write.Close()
		return nil, s.fail(ctx, "open writer", err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: journal mode is %q, want wal", mode)
	}

	read, err := sql.Open("sqlite", dsn(abs, rq))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		_ = write.Close()
		_ = read.Close()
		return nil, s.fail(ctx, "open readers", err)
	}
	s.read = read
	return s, nil
}

// dsn is the driver's URI for the file at the absolute path abs.
func dsn(abs string, q url.Values) string {
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
}

// Close releases the store's connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = errors.Join(s.read.Close(), s.write.Close())
	})
	return s.closeErr
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// writeTx runs fn in an IMMEDIATE transaction on the writer and commits it
// when fn returns nil.
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// readTx runs fn in a read transaction: every query of fn sees one snapshot.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
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
	cause := fmt.Errorf("sqlite: %s: %w", op, err)
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) {
		return unavailable(op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return unavailable(op, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("sqlite: %s: %w", op, errors.Join(ctx.Err(), err))
	}
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return cause
	}
	switch code := se.Code(); code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		if strings.Contains(se.Error(), "users.email") {
			return &usersvc.Error{Code: usersvc.EConflict, Message: msgEmailTaken, Err: cause}
		}
		return &usersvc.Error{Code: usersvc.EConflict, Message: msgConflict, Err: cause}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return &usersvc.Error{Code: usersvc.ENotFound, Message: msgReferenceNotFound, Err: cause}
	default:
		switch code & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
			return unavailable(op, err)
		}
	}
	return cause
}

// unavailable is the error for a database that cannot be used right now.
func unavailable(op string, err error) error {
	return &usersvc.Error{Code: usersvc.EUnavailable, Message: msgUnavailable, Err: fmt.Errorf("sqlite: %s: %w", op, err)}
}

func notFound(msg string) error {
	return &usersvc.Error{Code: usersvc.ENotFound, Message: msg}
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// micros is t as stored: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UTC().Truncate(time.Microsecond).UnixMicro() }

// fromMicros is a stored timestamp as a UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// truncate is t as the store keeps it.
func truncate(t time.Time) time.Time { return fromMicros(micros(t)) }

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// Stats reports the pool of read connections and the one write connection,
// added together.
func (s *Store) Stats() sql.DBStats {
	r, w := s.read.Stats(), s.write.Stats()
	return sql.DBStats{
		MaxOpenConnections: r.MaxOpenConnections + w.MaxOpenConnections,
		OpenConnections:    r.OpenConnections + w.OpenConnections,
		InUse:              r.InUse + w.InUse,
		Idle:               r.Idle + w.Idle,
		WaitCount:          r.WaitCount + w.WaitCount,
		WaitDuration:       r.WaitDuration + w.WaitDuration,
	}
}
