package httpapi_test

import (
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/pgtest"
	"github.com/usersvc/usersvc/internal/postgres"
)

// BenchmarkFeedLatency measures how long after a write's 2xx a consumer
// long-polling the change feed has the event: on one replica (SQLite), and
// with the write on one PostgreSQL replica and the long poll on another
// (woken through LISTEN/NOTIFY). It reports the median and the 99th
// percentile in milliseconds; each op is one write and its delivery.
//
//	USERSVC_TEST_POSTGRES_URL=… go test -run '^$' -bench FeedLatency -benchtime 200x ./internal/httpapi/
func BenchmarkFeedLatency(b *testing.B) {
	b.Run("sqlite/one-replica", func(b *testing.B) {
		h := newHarnessOn(b, newSQLite(b), cheapHashing)
		benchFeedLatency(b, h, h)
	})
	b.Run("postgres/two-replicas", func(b *testing.B) {
		if os.Getenv("USERSVC_TEST_POSTGRES_URL") == "" {
			b.Skip("USERSVC_TEST_POSTGRES_URL is not set")
		}
		url := pgtest.NewDatabase(b)
		open := func() testStore {
			st, err := postgres.Open(b.Context(), url)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}
		writer := newHarnessOn(b, open(), cheapHashing)
		reader := newHarnessOn(b, open(), cheapHashing)
		benchFeedLatency(b, writer, reader)
	})
}

func benchFeedLatency(b *testing.B, writer, reader *harness) {
	u := writer.register("Latency")
	key := []string{"X-Service-API-Key", feedKey}
	r := reader.do("GET", "/api/v1/events?after=0&limit=1000", nil, key...)
	_, cursor := feedTypes(b, r)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		type answer struct {
			at   time.Time
			next int64
		}
		got := make(chan answer, 1)
		go func() {
			res := reader.do("GET", "/api/v1/events?wait=10s&after="+itoa(cursor), nil, key...)
			at := time.Now()
			if res.Status == http.StatusOK {
				if evs, next := feedTypes(b, res); len(evs) > 0 {
					got <- answer{at, next}
				}
			}
			close(got)
		}()
		time.Sleep(5 * time.Millisecond) // let the poll start waiting
		w := writer.do("PATCH", "/api/v1/users/"+u.ID+"/preferences", map[string]any{"push": i%2 == 0}, "Authorization", "Bearer "+u.Access)
		done := time.Now()
		if w.Status != http.StatusOK {
			b.Fatalf("write: %d %s", w.Status, w.Raw)
		}
		a, ok := <-got
		if !ok {
			b.Fatal("the long poll failed")
		}
		lat = append(lat, max(a.at.Sub(done), 0))
		cursor = a.next
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
}
