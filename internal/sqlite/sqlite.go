// Package sqlite is the SQLite dialect of the account store
// (internal/sqlstore), the embedded default.
//
// The database is one file in WAL mode. Writes go through a single
// connection whose transactions all start with BEGIN IMMEDIATE, so writers
// in this process queue in Go and writers in other processes wait on the
// busy timeout instead of failing with SQLITE_BUSY; transactions never
// overlap, so no row or advisory locks are needed. Reads use a separate
// pool of read-only connections, which WAL lets run beside the writer.
//
// Timestamps are stored as INTEGER microseconds since the Unix epoch and
// come back in UTC. A list of values is a JSON array that json_each reads.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/XSAM/otelsql"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/migration"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// busyTimeout is how long a statement waits for a lock held by another
// connection (another process, or the writer while a reader checkpoints).
const busyTimeout = 5 * time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// An Option configures the connections of Open.
type Option func(*options)

type options struct {
	tracer trace.TracerProvider
}

// WithTracerProvider has every statement the store runs recorded as a span
// of tp (through otelsql, which wraps the driver: the driver has no tracer
// hook of its own). Spans carry the statement's text, never its arguments;
// row iteration, session resets and pings make none.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// open opens the driver's database at dsn, instrumented when o says so.
func (o *options) open(dsn string) (*sql.DB, error) {
	if o.tracer == nil {
		return sql.Open("sqlite", dsn)
	}
	return otelsql.Open("sqlite", dsn,
		otelsql.WithTracerProvider(o.tracer),
		otelsql.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelsql.WithAttributes(semconv.DBSystemNameSQLite),
		otelsql.WithSpanOptions(otelsql.SpanOptions{OmitRows: true, OmitConnResetSession: true, OmitConnectorConnect: true}),
	)
}

// Open opens (creating it and its parent directory when needed) the
// database file at path. It does not migrate: call Migrate.
func Open(ctx context.Context, path string, opts ...Option) (*sqlstore.Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q is not a database file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resolve %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, unavailable(fmt.Errorf("create database directory: %w", err))
	}

	pragmas := []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "foreign_keys(1)", "synchronous(NORMAL)"}
	write, err := o.open(dsn(abs, url.Values{"_pragma": append(pragmas, "journal_mode(WAL)"), "_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	read, err := o.open(dsn(abs, url.Values{"_pragma": append(pragmas, "query_only(1)")}))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	s := sqlstore.New(Dialect{}, write, read)
	write.SetMaxOpenConns(1) // one writer; its connection lives as long as the store
	write.SetConnMaxIdleTime(0)
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	var mode string
	err = write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil && !strings.EqualFold(mode, "wal") {
		err = fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err == nil {
		err = read.PingContext(ctx)
	}
	if err != nil {
		_ = s.Close()
		return nil, unavailable(err)
	}
	return s, nil
}

// unavailable is the error for a database file that cannot be used.
func unavailable(err error) error {
	return &usersvc.Error{Code: usersvc.EUnavailable, Message: "Service temporarily unavailable", Err: fmt.Errorf("sqlite: %w", err)}
}

// dsn is the driver's URI for the file at the absolute path abs.
func dsn(abs string, q url.Values) string {
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
}

// Dialect is SQLite's part of the store.
type Dialect struct{}

// Name implements sqlstore.Dialect.
func (Dialect) Name() string { return "sqlite" }

// Rebind keeps the ? placeholders, which are SQLite's own.
func (Dialect) Rebind(q string) string { return q }

// Time is t as INTEGER microseconds since the Unix epoch.
func (Dialect) Time(t time.Time) any { return t.UTC().Truncate(time.Microsecond).UnixMicro() }

// List is values as a JSON array.
func (Dialect) List(values any) any {
	b, _ := json.Marshal(values) // a []string or []int64 always encodes
	return string(b)
}

// InList reads the JSON array parameter with json_each.
func (Dialect) InList(col string) string { return col + ` IN (SELECT value FROM json_each(?))` }

// Lock is empty: one transaction writes at a time.
func (Dialect) Lock(bool) string { return "" }

// InsertEvents is a plain insert of n rows: one transaction writes at a
// time, so positions commit in order, and other processes poll.
func (Dialect) InsertEvents(n int) string {
	return `INSERT INTO events (id, type, subject, time, data, traceparent) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", n), ", ")
}

// ListenEvents returns at once: SQLite has no notifications.
func (Dialect) ListenEvents(context.Context, *sql.DB, func()) {}

// LockTokens does nothing: one transaction writes at a time.
func (Dialect) LockTokens(context.Context, sqlstore.Execer, []string) error { return nil }

// Classify tells SQLite's errors apart by their extended result codes.
func (Dialect) Classify(err error) sqlstore.ErrorKind {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return sqlstore.KindOther
	}
	switch code := se.Code(); code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		if strings.Contains(se.Error(), "users.email") {
			return sqlstore.KindEmailTaken
		}
		return sqlstore.KindConflict
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.KindForeignKey
	default:
		switch code & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
			return sqlstore.KindUnavailable
		}
	}
	return sqlstore.KindOther
}

// MigrationsTable creates the record of applied migrations.
func (Dialect) MigrationsTable() string {
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`
}

// LockMigrations takes no lock: each migration's transaction is IMMEDIATE,
// which already keeps every other writer out while it checks and applies.
func (Dialect) LockMigrations(context.Context, *sql.Conn) (func() error, error) {
	return func() error { return nil }, nil
}

// Migrations are the embedded SQLite migrations.
func (Dialect) Migrations() ([]migration.File, error) {
	return migration.Load(migrationFiles, "migrations")
}
