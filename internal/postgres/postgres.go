// Package postgres is the PostgreSQL dialect of the account store
// (internal/sqlstore), through pgx's database/sql driver.
//
// Transactions run at READ COMMITTED, concurrently. What keeps them from
// breaking the rules of the store: row locks (a login's share lock on its
// user, see sqlstore.Store.CreateRefreshFamily), transaction advisory locks
// on push tokens taken in one order, and a retry of a transaction aborted
// for a deadlock or a serialization failure. Migrations hold a session
// advisory lock.
//
// Timestamps are timestamptz (microseconds, UTC). Ids of users and devices
// are uuid columns. A list of values is one text[] parameter.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/usersvc/usersvc/internal/migration"
	"github.com/usersvc/usersvc/internal/sqlstore"
)

// connectTimeout bounds establishing one connection when the URL does not
// say otherwise (connect_timeout), so that a server that is down is
// reported within a bounded time.
const connectTimeout = 5 * time.Second

// tokenLockSpace is the first key of the transaction advisory locks taken
// on push tokens ("us" in ASCII); the second is the token's hash.
const tokenLockSpace int32 = 0x7573

// eventsLockKey is the transaction advisory lock under which events are
// written ("usersvc" in ASCII, then 2), and eventsChannel the channel of
// their notifications.
const (
	eventsLockKey int64 = 0x7573657273766302
	eventsChannel       = "usersvc_events"
)

// migrationLockKey is the pg_advisory_lock key that serialises migrations
// of one database ("usersvc" in ASCII, then 1).
const migrationLockKey int64 = 0x7573657273766301

//go:embed migrations/*.sql
var migrationFiles embed.FS

// An Option configures the connections of Open.
type Option func(*pgx.ConnConfig)

// WithTracer has every statement the store's connections run reported to
// t: to count them, to time them, or to export them as spans.
func WithTracer(t pgx.QueryTracer) Option { return func(c *pgx.ConnConfig) { c.Tracer = t } }

// Open connects to the database at url (postgres://… or a keyword/value
// string; pool settings such as pool_max_conns are read from it) and checks
// that it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, url string, opts ...Option) (*sqlstore.Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	for _, opt := range opts {
		opt(cfg.ConnConfig)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	db.SetConnMaxLifetime(cfg.MaxConnLifetime)
	db.SetConnMaxIdleTime(cfg.MaxConnIdleTime)
	s := sqlstore.New(Dialect{listen: cfg.ConnConfig}, db, db)
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Dialect is PostgreSQL's part of the store. listen, when set, is the
// configuration of the connection that LISTENs for events.
type Dialect struct {
	listen *pgx.ConnConfig
}

// Name implements sqlstore.Dialect.
func (Dialect) Name() string { return "postgres" }

// Rebind turns ? placeholders into $1, $2, ….
func (Dialect) Rebind(q string) string {
	var b strings.Builder
	for i, part := range strings.Split(q, "?") {
		if i > 0 {
			fmt.Fprintf(&b, "$%d", i)
		}
		b.WriteString(part)
	}
	return b.String()
}

// Time is t as a timestamptz.
func (Dialect) Time(t time.Time) any { return t.UTC().Truncate(time.Microsecond) }

// List is values as an array parameter. A list of strings is sent as the
// text of an array literal, which PostgreSQL reads as the array type of
// the column it is compared with (uuid[] or text[]): pgx has no binary
// encoding of a Go string as a uuid, and finding that out cost an error
// per element (a thousand of them in a batch lookup) before it fell back
// to text.
func (Dialect) List(values any) any {
	if ss, ok := values.([]string); ok {
		return arrayLiteral(ss)
	}
	return values
}

// arrayLiteral is ss as a PostgreSQL array literal: every element quoted,
// with its quotes and backslashes escaped.
func arrayLiteral(ss []string) string {
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if c := s[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// InList compares col with every element of the array parameter, whose
// element type PostgreSQL takes from col (uuid or text).
func (Dialect) InList(col string) string { return col + ` = ANY(?)` }

// Lock holds the rows a SELECT reads until the transaction ends: against
// writers (share) or against other writers and lockers too.
func (Dialect) Lock(share bool) string {
	if share {
		return " FOR SHARE"
	}
	return " FOR UPDATE"
}

// errCommitRolledBack is a COMMIT that the server answered ROLLBACK: the
// transaction had failed.
var errCommitRolledBack = errors.New("commit unexpectedly resulted in rollback")

// CommitWith implements sqlstore.CommitPipeliner with a pgx batch on the
// connection under conn: q (the insert of the transaction's events) and
// COMMIT go out in one pipeline, answered in one round trip. When q fails
// the server skips the COMMIT, and the transaction stays open for the
// store to roll back.
func (Dialect) CommitWith(ctx context.Context, conn *sql.Conn, q string, args []any) error {
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: commit: a connection of type %T", dc)
		}
		b := &pgx.Batch{}
		if q != "" {
			b.Queue(q, args...)
		}
		b.Queue("COMMIT")
		br := sc.Conn().SendBatch(ctx, b)
		var err error
		if q != "" {
			_, err = br.Exec()
		}
		if err == nil {
			var tag pgconn.CommandTag
			if tag, err = br.Exec(); err == nil && tag.String() == "ROLLBACK" {
				err = errCommitRolledBack
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// InsertEvents inserts n rows in one statement that first takes the
// transaction advisory lock under which events are written, and queues a
// notification on eventsChannel for every listening connection, delivered
// on commit. Positions are drawn from a sequence as rows are inserted;
// holding the lock until commit makes them become visible in order, so a
// reader past position p never misses one below it that commits later.
// The lock's subquery yields the one row every inserted row is joined
// with, so it is taken before the first position is drawn.
func (Dialect) InsertEvents(n int) string {
	return fmt.Sprintf(`INSERT INTO events (id, type, subject, time, data, traceparent)
		SELECT v.id, v.type, v.subject, v.time, v.data, v.traceparent
		FROM (SELECT pg_advisory_xact_lock(%d), pg_notify('%s', '')) AS l,
			(VALUES %s) AS v (id, type, subject, time, data, traceparent)`,
		eventsLockKey, eventsChannel, strings.TrimSuffix(strings.Repeat("(?::uuid, ?::text, ?::text, ?::timestamptz, ?::text, ?::text), ", n), ", "))
}

// ListenEvents keeps one connection of its own listening on eventsChannel
// and calls wake for each notification, reconnecting after a failure,
// until ctx ends.
func (d Dialect) ListenEvents(ctx context.Context, _ *sql.DB, wake func()) {
	if d.listen == nil {
		return
	}
	for ctx.Err() == nil {
		if err := d.listenOnce(ctx, wake); err != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (d Dialect) listenOnce(ctx context.Context, wake func()) error {
	conn, err := pgx.ConnectConfig(ctx, d.listen.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+eventsChannel); err != nil {
		return err
	}
	wake() // anything committed while no connection listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}

// LockTokens takes a transaction advisory lock per token, in the order of
// their hashes, so that two transactions moving one token run one after
// the other and "a token belongs to one user" holds under concurrency,
// not only one statement at a time.
func (Dialect) LockTokens(ctx context.Context, tx sqlstore.Execer, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, h)
		FROM (SELECT DISTINCT hashtext(t) AS h FROM unnest($2::text[]) AS t ORDER BY h) AS locks`,
		tokenLockSpace, tokens)
	return err
}

// Classify tells PostgreSQL's errors apart by SQLSTATE, and connection
// failures by their types.
func (Dialect) Classify(err error) sqlstore.ErrorKind {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "users_email_key":
			return sqlstore.KindEmailTaken
		case pgErr.Code == "23505":
			return sqlstore.KindConflict
		case pgErr.Code == "23503":
			return sqlstore.KindForeignKey
		case pgErr.Code == "40P01", pgErr.Code == "40001":
			return sqlstore.KindRetry
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources, too many connections
			pgErr.Code == "57P01",               // admin shutdown
			pgErr.Code == "57P02",               // crash shutdown
			pgErr.Code == "57P03":               // cannot connect now
			return sqlstore.KindUnavailable
		}
		return sqlstore.KindOther
	}
	if errors.Is(err, context.Canceled) {
		return sqlstore.KindOther
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if pgconn.Timeout(err) || errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return sqlstore.KindUnavailable
	}
	return sqlstore.KindOther
}

// MigrationsTable creates the record of applied migrations.
func (Dialect) MigrationsTable() string {
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`
}

// LockMigrations holds a session advisory lock on conn, so that processes
// that start at once migrate one after the other.
func (Dialect) LockMigrations(ctx context.Context, conn *sql.Conn) (func() error, error) {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return nil, err
	}
	return func() error {
		_, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
		return err
	}, nil
}

// Migrations are the embedded PostgreSQL migrations.
func (Dialect) Migrations() ([]migration.File, error) {
	return migration.Load(migrationFiles, "migrations")
}
