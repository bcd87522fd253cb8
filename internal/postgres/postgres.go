// Package postgres is the account store on PostgreSQL, through a pgx
// connection pool and hand-written SQL.
//
// Timestamps are timestamptz, which keeps microseconds; they come back in
// UTC. Callers should pass times already truncated to microseconds; the
// store truncates anyway, so a value read back always equals the one
// written at that precision.
//
// Ids of users and devices are uuid columns: a string that is not a UUID in
// canonical form names no row, and lookups by one answer ENotFound without
// a query.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usersvc/usersvc"
)

// connectTimeout bounds establishing one connection when the URL does not
// say otherwise (connect_timeout), so that a server that is down is
// reported within a bounded time.
const connectTimeout = 5 * time.Second

// maxTxAttempts is how many times a transaction that PostgreSQL aborted
// for a deadlock or a serialization failure is run.
const maxTxAttempts = 3

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

// Store is the account store on a PostgreSQL database.
type Store struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
}

// Open connects to the database at url (postgres://… or a keyword/value
// string; pool settings such as pool_max_conns are read from it) and checks
// that it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.tracer != nil {
		cfg.ConnConfig.Tracer = o.tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	s := &Store{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, s.fail(ctx, "open", err)
	}
	return s, nil
}

// Close releases the store's connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.fail(ctx, "ping", s.pool.Ping(ctx))
}

// Stats reports the state of the connection pool, for metrics.
func (s *Store) Stats() *pgxpool.Stat {
	return s.pool.Stat()
}

// inTx runs fn in a transaction and commits it when fn returns nil. A
// transaction that PostgreSQL aborted for a deadlock or a serialization
// failure runs again, up to maxTxAttempts times; fn must therefore only
// write its results to the caller once it has nothing left to fail.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		retry := errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
		if !retry || attempt == maxTxAttempts || ctx.Err() != nil {
			return s.fail(ctx, op, err)
		}
	}
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
	cause := fmt.Errorf("postgres: %s: %w", op, err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "users_email_key":
			return &usersvc.Error{Code: usersvc.EConflict, Message: msgEmailTaken, Err: cause}
		case pgErr.Code == "23505":
			return &usersvc.Error{Code: usersvc.EConflict, Message: msgConflict, Err: cause}
		case pgErr.Code == "23503":
			return &usersvc.Error{Code: usersvc.ENotFound, Message: msgReferenceNotFound, Err: cause}
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources, too many connections
			pgErr.Code == "57P01",               // admin shutdown
			pgErr.Code == "57P02",               // crash shutdown
			pgErr.Code == "57P03":               // cannot connect now
			return unavailable(op, err)
		}
		return cause
	}
	if s.closed.Load() {
		return unavailable(op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return unavailable(op, err)
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return cause
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return unavailable(op, err)
	}
	return cause
}

// unavailable is the error for a database that cannot be reached.
func unavailable(op string, err error) error {
	return &usersvc.Error{Code: usersvc.EUnavailable, Message: msgUnavailable, Err: fmt.Errorf("postgres: %s: %w", op, err)}
}

func notFound(msg string) error {
	return &usersvc.Error{Code: usersvc.ENotFound, Message: msg}
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// isUUID reports whether id is a UUID in canonical form (lowercase, with
// hyphens), the only form in which ids are handed out. Other spellings name
// no row, as they would in the SQLite store.
func isUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// uuids returns the ids that are UUIDs.
func uuids(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if isUUID(id) {
			out = append(out, id)
		}
	}
	return out
}

// ts is t as stored: UTC, truncated to microseconds.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
