package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc"
)

// eventsPoll is how often the store looks for events that another process
// committed, besides the wake-ups of its own commits and, on PostgreSQL,
// of LISTEN/NOTIFY.
const eventsPoll = time.Second

// pendingEvent is an event a transaction writes when it commits.
type pendingEvent struct {
	typ, subject string
	at           time.Time
	data         any
}

// emit records an event of the change the transaction makes. The events
// of a transaction are written at its end, in the order emitted, under the
// dialect's events lock, so that positions commit in order.
func (t *tx) emit(typ, subject string, at time.Time, data any) {
	t.events = append(t.events, pendingEvent{typ, subject, at, data})
}

// eventParams is the number of parameters of one event in the statement
// of Dialect.InsertEvents: id, type, subject, time, data, traceparent.
const eventParams = 6

// traceParent is the W3C traceparent of the span in ctx, for the event's
// distributed tracing extension; nil (NULL) without one.
func traceParent(ctx context.Context) any {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}

// eventsInsert returns the statement, and its arguments, that writes the
// pending events of t; "" when there is none to write.
func (t *tx) eventsInsert() (string, []any, error) {
	if len(t.events) == 0 || t.s.discard {
		return "", nil, nil
	}
	args := make([]any, 0, eventParams*len(t.events))
	traceparent := traceParent(t.ctx)
	for _, e := range t.events {
		b, err := json.Marshal(e.data)
		if err != nil {
			return "", nil, err
		}
		args = append(args, uuid.Must(uuid.NewV7()).String(), e.typ, e.subject, t.s.d.Time(e.at), string(b), traceparent)
	}
	return t.s.d.InsertEvents(len(t.events)), args, nil
}

// flushEvents writes the pending events of t, last thing before its
// commit.
func (t *tx) flushEvents() error {
	q, args, err := t.eventsInsert()
	if err != nil || q == "" {
		return err
	}
	n := len(t.events)
	if st := t.s.eventStmt(n); st != nil {
		if sqlTx, ok := t.db.(*sql.Tx); ok {
			if err := t.check(q); err != nil {
				return err
			}
			_, err := sqlTx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
			return err
		}
	}
	if _, err := t.exec(q, args...); err != nil {
		return err
	}
	t.prepare = n
	return nil
}

// preparedEvents is the most events whose insert is prepared (most
// transactions write one or two).
const preparedEvents = 4

// eventStmt returns the prepared insert of n events; nil when there is
// none (yet), or where the dialect does not prepare it.
func (s *Store) eventStmt(n int) *sql.Stmt {
	if n > preparedEvents {
		return nil
	}
	return s.eventStmts[n].Load()
}

// prepareEvents prepares the insert of n events, when it is not prepared
// yet, for the write transactions that are database/sql Txs (those of a
// dialect that is not a CommitPipeliner: SQLite, whose driver parses every
// statement it runs unless it is prepared; pgx keeps its own statement
// cache). It runs after the commit of a transaction that wrote n events
// without it: a prepare needs a connection of the pool, and SQLite's
// writer has one only. A prepare that fails is tried again after the next
// such transaction.
func (s *Store) prepareEvents(ctx context.Context, n int) {
	if n > preparedEvents || s.eventStmts[n].Load() != nil || s.closed.Load() {
		return
	}
	st, err := s.write.PrepareContext(ctx, s.q(s.d.InsertEvents(n)))
	if err != nil {
		return
	}
	if !s.eventStmts[n].CompareAndSwap(nil, st) {
		_ = st.Close()
		return
	}
	if s.closed.Load() { // Close may have run meanwhile, before the swap
		if s.eventStmts[n].CompareAndSwap(st, nil) {
			_ = st.Close()
		}
	}
}

// closeEventStmts closes the prepared inserts of events.
func (s *Store) closeEventStmts() error {
	var errs []error
	for i := range s.eventStmts {
		if st := s.eventStmts[i].Swap(nil); st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// discardingEvents makes the store write no events (for benchmarks of the
// outbox's cost; see export_test.go).
func (s *Store) discardingEvents(v bool) { s.discard = v }

const eventColumns = `position, id, type, subject, time, data, COALESCE(traceparent, '')`

func scanEvent(r rowScanner) (usersvc.Event, error) {
	var (
		e    usersvc.Event
		data string
	)
	err := r.Scan(&e.Position, &e.ID, &e.Type, &e.Subject, timeCol{&e.Time}, &data, &e.TraceParent)
	e.SpecVersion, e.Source, e.DataContentType, e.Data = usersvc.EventSpecVersion, usersvc.EventSource, usersvc.EventContentType, json.RawMessage(data)
	return e, err
}

// Events returns at most limit events after position after, in order.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]usersvc.Event, error) {
	evs, err := all(s.reader(ctx, "events"), scanEvent, `SELECT `+eventColumns+` FROM events
		WHERE position > ? ORDER BY position LIMIT ?`, after, max(limit, 0))
	return evs, s.fail(ctx, "events", err)
}

// EventBounds returns the positions of the oldest and the newest event
// kept; 0, 0 when there is none.
func (s *Store) EventBounds(ctx context.Context) (oldest, newest int64, err error) {
	_, err = one(s.reader(ctx, "event bounds"), "", scanInto(&oldest, &newest),
		// Two subqueries: SQLite reads a lone min or max of the primary key
		// from one end of it, but both in one query by scanning the table.
		`SELECT COALESCE((SELECT min(position) FROM events), 0), COALESCE((SELECT max(position) FROM events), 0)`)
	return oldest, newest, s.fail(ctx, "event bounds", err)
}

// publishedThrough names the row of event_progress that holds the
// relay's watermark: every event at or below its position is published.
const publishedThrough = "published_through"

// watermark is the expression of the relay's watermark (0 without a row).
const watermark = `COALESCE((SELECT position FROM event_progress WHERE name = '` + publishedThrough + `'), 0)`

// UnpublishedEvents returns at most limit events no broker has confirmed,
// in order: those above the watermark. Positions commit in order, so no
// event can commit below the watermark once it has passed.
func (s *Store) UnpublishedEvents(ctx context.Context, limit int) ([]usersvc.Event, error) {
	evs, err := all(s.reader(ctx, "unpublished events"), scanEvent, `SELECT `+eventColumns+` FROM events
		WHERE position > `+watermark+` ORDER BY position LIMIT ?`, max(limit, 0))
	return evs, s.fail(ctx, "unpublished events", err)
}

// MarkEventsPublished records that a broker confirmed the events at
// positions, which must be the oldest unpublished events (a prefix of
// what UnpublishedEvents returned): it advances the watermark to the
// greatest of them, at now, and never moves it back, so that a relay
// that marks late (another took over meanwhile) changes nothing.
func (s *Store) MarkEventsPublished(ctx context.Context, positions []int64, now time.Time) error {
	if len(positions) == 0 {
		return nil
	}
	through := slices.Max(positions)
	_, err := s.execTx(ctx, "mark events published", "", `INSERT INTO event_progress (name, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
		WHERE event_progress.position < excluded.position`, publishedThrough, through, s.d.Time(now))
	return err
}

// defaultPruneBatch is PruneBatch when it is not set.
const defaultPruneBatch = 5000

// PruneEvents removes the events older than before, but the newest one
// (so that the oldest position kept always tells which cursors are too
// old), and, with keepUnpublished, those no broker has confirmed (above
// the watermark). It returns how many went. Positions grow with time, so
// the events to prune are those below the first position that is recent
// enough: both databases find it by walking the positions up from the
// oldest, reading the events to prune up to the first one to keep (time
// has no index). They go in transactions of at most PruneBatch positions, so
// that writes wait on a pruning (on SQLite, all of them do: one writer) for
// one batch at a time, not for the whole of it.
func (s *Store) PruneEvents(ctx context.Context, before time.Time, keepUnpublished bool) (n int, err error) {
	var bound int64
	if _, err := one(s.reader(ctx, "prune events"), "", scanInto(&bound), `SELECT COALESCE((SELECT min(position) FROM events WHERE time >= ?),
		(SELECT max(position) FROM events), 0)`, s.d.Time(before)); err != nil {
		return 0, s.fail(ctx, "prune events", err)
	}
	batch := int64(cmp.Or(s.PruneBatch, defaultPruneBatch))
	for {
		var count int64
		err := s.inTx(ctx, "prune events", func(t *tx) error {
			var oldest, through int64
			if _, err := one(t, "", scanInto(&oldest, &through),
				`SELECT COALESCE((SELECT min(position) FROM events), 0), `+watermark); err != nil {
				return err
			}
			end := min(bound, oldest+batch)
			if keepUnpublished {
				end = min(end, through+1)
			}
			var err error
			count, err = t.exec(`DELETE FROM events WHERE position < ?`, end)
			return err
		})
		n += int(count)
		if err != nil || count == 0 {
			return n, err
		}
	}
}

// AcquireLease makes holder the holder of the lease name until now+ttl,
// when the lease is free, expired or already holder's, and reports
// whether holder holds it.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	n, err := s.execTx(ctx, "acquire lease", "", `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at < ?`,
		name, holder, s.d.Time(now.Add(ttl)), s.d.Time(now))
	return n == 1, err
}

// ReleaseLease gives up the lease name if holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.execTx(ctx, "release lease", "", `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return err
}

// EventsChanged returns a channel that is closed when events may have
// been committed since the call: by this process at once, by another
// within eventsPoll (on PostgreSQL at once, through LISTEN/NOTIFY). Call
// it again after each wake-up.
func (s *Store) EventsChanged() <-chan struct{} {
	s.watchOnce.Do(s.watchEvents)
	return s.changed.wait()
}

// watchEvents starts the loops that wake waiters for events committed by
// other processes; they end when the store closes.
func (s *Store) watchEvents() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	go s.d.ListenEvents(ctx, s.write, s.changed.wake)
	go func() {
		var last int64
		every := s.EventsPoll
		if every <= 0 {
			every = eventsPoll
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, newest, err := s.EventBounds(ctx)
				if err == nil && newest != last {
					last = newest
					s.changed.wake()
				}
			}
		}
	}()
}

// signal is a broadcast: wait returns a channel that the next wake closes.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
