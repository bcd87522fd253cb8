package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
)

// batchStatements counts the SQL statements a pgx pool runs and the time
// they take, and the statements it prepares (once per connection and
// statement text).
type batchStatements struct {
	queries, prepares atomic.Int64
	nanos             atomic.Int64
}

type batchStartKey struct{}

func (c *batchStatements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return context.WithValue(ctx, batchStartKey{}, time.Now())
}

func (c *batchStatements) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if start, ok := ctx.Value(batchStartKey{}).(time.Time); ok {
		c.nanos.Add(int64(time.Since(start)))
	}
}

func (c *batchStatements) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	c.prepares.Add(1)
	return ctx
}

func (c *batchStatements) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// batchEnv is a PostgreSQL store with its statements and store calls
// counted, and a population of users with one or two devices each.
type batchEnv struct {
	tb    testing.TB
	stmts *batchStatements
	store *readCounter
	ids   []string // the users, in the order made
	hc    *http.Client
}

// newBatchEnv opens a fresh PostgreSQL database and registers users users,
// every one with a device and every other one with a second. It skips
// without USERSVC_TEST_POSTGRES_URL.
func newBatchEnv(tb testing.TB, users int) *batchEnv {
	tb.Helper()
	e := &batchEnv{tb: tb, stmts: &batchStatements{}, hc: &http.Client{}}
	tb.Cleanup(e.hc.CloseIdleConnections)
	st, err := postgres.Open(tb.Context(), pgtest.NewDatabase(tb), postgres.WithTracer(e.stmts))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	e.store = &readCounter{testStore: st}

	accounts := e.accounts(nil)
	e.ids = make([]string, users)
	seedEach(tb, users, func(i int) error { return batchSeed(tb.Context(), accounts, i, &e.ids[i]) })
	return e
}

// batchSeed registers user i with a push token and, for odd i, a second
// device.
func batchSeed(ctx context.Context, accounts *account.Service, i int, id *string) error {
	u, err := accounts.Register(ctx, usersvc.Registration{
		Email: fmt.Sprintf("batch.%d@example.com", i), Name: "Batch User", Password: "Str0ng!Passw0rd",
		PushToken: batchPtr(fmt.Sprintf("fcm:batch-%d-phone", i)),
	})
	if err != nil {
		return err
	}
	*id = u.ID
	if i%2 == 1 {
		_, err = accounts.UpdatePushToken(ctx, account.Principal{UserID: u.ID}, u.ID, usersvc.PushTokenUpdate{
			Token: batchPtr(fmt.Sprintf("apns:batch-%d-tablet", i)), DeviceID: batchPtr("tablet"), DeviceType: usersvc.DeviceIOS,
		})
	}
	return err
}

func batchPtr(s string) *string { return &s }

// accounts returns the use cases on the counted store, with cache c (none
// when nil).
func (e *batchEnv) accounts(c cache.Cache) *account.Service {
	e.tb.Helper()
	hasher, err := password.New(password.WithParams(cheapHashing))
	if err != nil {
		e.tb.Fatal(err)
	}
	keys, err := account.ParseServiceKeys("notifier:" + serviceKey)
	if err != nil {
		e.tb.Fatal(err)
	}
	return account.New(cached(e.store, c), hasher, newTestTokens(e.tb, testSecret), account.Options{ServiceKeys: keys})
}

// server serves the API on the counted store, with cache c (none when nil).
func (e *batchEnv) server(c cache.Cache) *httptest.Server {
	e.tb.Helper()
	tokens := newTestTokens(e.tb, testSecret)
	srv := httptest.NewServer(httpapi.NewServer(slog.New(slog.DiscardHandler), httpapi.Config{Version: "bench", JWKS: tokens.JWKS},
		e.accounts(c), httpapi.Health{Database: e.store.Ping, Draining: new(atomic.Bool)}))
	e.tb.Cleanup(srv.Close)
	return srv
}

// send makes one request as the notifier service and returns the status
// and the body.
func (e *batchEnv) send(tb testing.TB, method, url string, body []byte) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("X-Service-API-Key", serviceKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, raw
}

// counts returns the statements run and the store calls made so far.
func (e *batchEnv) counts() (queries, calls int64) {
	return e.stmts.queries.Load(), e.store.n.Load()
}

// batchAnswer is the data of a batch answer, as far as the checks need.
type batchAnswer struct {
	Users []struct {
		ID         string `json:"id"`
		PushTokens []struct {
			PushToken string `json:"push_token"`
		} `json:"push_tokens"`
	} `json:"users"`
	NotFound []string `json:"not_found"`
}

func batchBody(tb testing.TB, ids []string) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string][]string{"user_ids": ids})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decodeBatch(tb testing.TB, raw []byte) batchAnswer {
	tb.Helper()
	var env struct {
		Data batchAnswer `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		tb.Fatalf("batch answer: %v: %.200s", err, raw)
	}
	return env.Data
}

// TestBatchQueryCountOnPostgres checks that a batch lookup costs two SQL
// statements (users, then their devices) whatever the number of ids, and
// the contract's rules of the batch: 1 to 1000 ids, repeats answered once,
// unknown ids in not_found. It is skipped without USERSVC_TEST_POSTGRES_URL.
func TestBatchQueryCountOnPostgres(t *testing.T) {
	const users = 24
	e := newBatchEnv(t, users)
	srv := e.server(nil)
	url := srv.URL + "/api/v1/users/batch"

	unknown := make([]string, 0, 1000-users)
	for len(unknown) < cap(unknown) {
		unknown = append(unknown, uuid.NewString())
	}
	cases := []struct {
		name               string
		ids                []string
		found, notFound    int
		maxQueries, nCalls int64
	}{
		{"one user", e.ids[:1], 1, 0, 2, 2},
		{"every user and 976 unknown ids", append(slices.Clone(e.ids), unknown...), users, len(unknown), 2, 2},
		{"repeats", []string{e.ids[3], strings.ToUpper(e.ids[3]), e.ids[3], e.ids[4]}, 2, 0, 2, 2},
		{"unknown ids only", unknown[:10], 0, 10, 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q0, c0 := e.counts()
			status, raw := e.send(t, "POST", url, batchBody(t, c.ids))
			q1, c1 := e.counts()
			if status != http.StatusOK {
				t.Fatalf("status %d: %.300s", status, raw)
			}
			got := decodeBatch(t, raw)
			if len(got.Users) != c.found || len(got.NotFound) != c.notFound {
				t.Fatalf("%d users, %d not found; want %d, %d", len(got.Users), len(got.NotFound), c.found, c.notFound)
			}
			seen := map[string]bool{}
			for _, u := range got.Users {
				if seen[u.ID] {
					t.Errorf("user %s answered twice", u.ID)
				}
				seen[u.ID] = true
				if len(u.PushTokens) < 1 || len(u.PushTokens) > 2 {
					t.Errorf("user %s has %d devices", u.ID, len(u.PushTokens))
				}
			}
			if q := q1 - q0; q < 1 || q > c.maxQueries {
				t.Errorf("%d SQL statements, want 1 to %d", q, c.maxQueries)
			}
			if n := c1 - c0; n != c.nCalls {
				t.Errorf("%d store calls, want %d", n, c.nCalls)
			}
		})
	}

	// 1000 ids are accepted, 1001 are not; nor is none.
	if status, raw := e.send(t, "POST", url, batchBody(t, append(unknown, e.ids[:users]...))); status != http.StatusOK {
		t.Errorf("1000 ids: %d %.200s", status, raw)
	}
	q0, _ := e.counts()
	if status, raw := e.send(t, "POST", url, batchBody(t, append(unknown, append(e.ids, uuid.NewString())...))); status != http.StatusBadRequest || !strings.Contains(string(raw), "at most 1000") {
		t.Errorf("1001 ids: %d %.200s", status, raw)
	}
	if status, _ := e.send(t, "POST", url, batchBody(t, []string{})); status != http.StatusBadRequest {
		t.Errorf("no ids: %d", status)
	}
	if q1, _ := e.counts(); q1 != q0 {
		t.Errorf("refused batches ran %d statements", q1-q0)
	}
}

// BenchmarkBatch measures POST /api/v1/users/batch with 1000 ids, every one
// a user with one or two devices, on PostgreSQL, through the HTTP handler
// with a service key; and, as the baselines of the same run, a batch of one
// id and GET /api/v1/users/{id}. Each is run with the cache off (the
// database's cost) and with a warm in-process cache. Reported besides
// ns/op: ms/op, SQL statements per request (sql/op, and sql-prepares/op,
// which fall to zero once every pooled connection has prepared the
// statements), the time spent in them from the query's start to its last
// row (sql-ms/op), store calls per request (store-calls/op) and the
// answer's size (resp-kB). It is skipped without USERSVC_TEST_POSTGRES_URL.
//
//	USERSVC_TEST_POSTGRES_URL=… go test -run '^$' -bench BenchmarkBatch -benchtime 20x -count 3 ./internal/httpapi/
func BenchmarkBatch(b *testing.B) {
	const users = 1000
	e := newBatchEnv(b, users)
	for _, withCache := range []bool{false, true} {
		var c cache.Cache
		name := "cache=off"
		if withCache {
			c, name = cache.NewMemory(10_000, cache.Options{}), "cache=warm"
		}
		srv := e.server(c)
		single := srv.URL + "/api/v1/users/" + e.ids[0]
		// Warm the cache (and the pool's prepared statements) outside the timing.
		for _, id := range e.ids {
			if status, raw := e.send(b, "GET", srv.URL+"/api/v1/users/"+id, nil); status != http.StatusOK {
				b.Fatalf("get user: %d %.200s", status, raw)
			}
		}
		requests := []struct {
			name, method, url string
			body              []byte
			users             int
		}{
			{"batch-1000", "POST", srv.URL + "/api/v1/users/batch", batchBody(b, e.ids), users},
			{"batch-1", "POST", srv.URL + "/api/v1/users/batch", batchBody(b, e.ids[:1]), 1},
			{"get-user-baseline", "GET", single, nil, 0},
		}
		for _, r := range requests {
			b.Run(name+"/"+r.name, func(b *testing.B) {
				status, raw := e.send(b, r.method, r.url, r.body)
				if status != http.StatusOK {
					b.Fatalf("%d %.200s", status, raw)
				}
				if r.users > 0 {
					if got := decodeBatch(b, raw); len(got.Users) != r.users || len(got.NotFound) != 0 {
						b.Fatalf("%d users, %d not found", len(got.Users), len(got.NotFound))
					}
				}
				q0, c0 := e.counts()
				p0, t0 := e.stmts.prepares.Load(), e.stmts.nanos.Load()
				for b.Loop() {
					if status, _ := e.send(b, r.method, r.url, r.body); status != http.StatusOK {
						b.Fatalf("status %d", status)
					}
				}
				q1, c1 := e.counts()
				n := float64(b.N)
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/n, "ms/op")
				b.ReportMetric(float64(q1-q0)/n, "sql/op")
				b.ReportMetric(float64(e.stmts.nanos.Load()-t0)/1e6/n, "sql-ms/op")
				b.ReportMetric(float64(e.stmts.prepares.Load()-p0)/n, "sql-prepares/op")
				b.ReportMetric(float64(c1-c0)/n, "store-calls/op")
				b.ReportMetric(float64(len(raw))/1000, "resp-kB")
			})
		}
	}
}
