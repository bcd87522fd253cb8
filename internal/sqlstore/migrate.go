package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/usersvc/usersvc/internal/migration"
)

// Migrate applies the pending migrations of the dialect, each in its own
// transaction that also records it in schema_migrations. The check for
// "already applied" runs inside that transaction, on one connection that
// holds the dialect's migration lock, so processes that start at once
// apply each migration once. Versions recorded by a newer build, unknown
// to this one, are left alone.
func (s *Store) Migrate(ctx context.Context) error {
	return s.MigrateTo(ctx, math.MaxInt)
}

// MigrateTo applies, as Migrate does, the pending migrations numbered up
// to version and no further: tests build a database of an older schema
// with it, to check what a later migration makes of its rows.
func (s *Store) MigrateTo(ctx context.Context, version int) (err error) {
	ms, err := s.d.Migrations()
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", s.d.Name(), err)
	}
	ms = slices.DeleteFunc(ms, func(m migration.File) bool { return m.Version > version })
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return s.fail(ctx, "migrate", err)
	}
	defer conn.Close()
	unlock, err := s.d.LockMigrations(ctx, conn)
	if err != nil {
		return s.fail(ctx, "migrate: lock", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil {
			// A connection that may still hold the lock must not go back
			// to the pool: discarding it releases the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, s.fail(ctx, "migrate: unlock", uerr))
		}
	}()
	if _, err := conn.ExecContext(ctx, s.d.MigrationsTable()); err != nil {
		return s.fail(ctx, "migrate", err)
	}
	for _, m := range ms {
		err := s.runTxOn(ctx, conn, "migrate "+m.Name, func(t *tx) error {
			var applied bool
			_, err := one(t, "", scanInto(&applied), `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.Version)
			if err == nil && !applied {
				// The migration's own text is not rebound: it is the dialect's.
				if _, err = t.db.ExecContext(ctx, m.SQL); err == nil {
					_, err = t.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
						m.Version, m.Name, s.d.Time(time.Now()))
				}
			}
			return err
		})
		if err != nil {
			return s.fail(ctx, "migrate "+m.Name, err)
		}
	}
	return nil
}
