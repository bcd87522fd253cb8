package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
)

// resolveAnswer is the data of a resolve answer, as far as the checks need.
type resolveAnswer struct {
	Category   *string `json:"category"`
	Recipients []struct {
		UserID   string `json:"user_id"`
		Channels map[string]struct {
			Send       bool    `json:"send"`
			Reason     *string `json:"reason"`
			Email      *string `json:"email"`
			PushTokens []struct {
				PushToken string `json:"push_token"`
			} `json:"push_tokens"`
		} `json:"channels"`
	} `json:"recipients"`
	NotFound []string `json:"not_found"`
}

func resolveBody(tb testing.TB, category string, ids []string) []byte {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"category": category, "channels": []string{"email", "push", "sms", "in_app"}, "user_ids": ids})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func decodeResolve(tb testing.TB, raw []byte) resolveAnswer {
	tb.Helper()
	var env struct {
		Data resolveAnswer `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		tb.Fatalf("resolve answer: %v: %.200s", err, raw)
	}
	return env.Data
}

// TestResolveQueryCountOnPostgres checks that resolving recipients costs
// three SQL statements (the category, the users, their devices) whatever
// the number of ids, with the cache off, and the decisions of a category
// whose defaults leave sms off. It is skipped without
// USERSVC_TEST_POSTGRES_URL.
func TestResolveQueryCountOnPostgres(t *testing.T) {
	const users = 24
	e := newBatchEnv(t, users)
	accounts := e.accounts(nil)
	admin := adminPrincipal(t, accounts)
	if _, err := accounts.PutCategory(t.Context(), admin, &usersvc.Category{Key: "order_updates", Name: "Order updates",
		Defaults: map[string]bool{"sms": false}}); err != nil {
		t.Fatal(err)
	}
	srv := e.server(nil)
	url := srv.URL + "/api/v1/recipients/resolve"
	unknown := make([]string, 0, 1000-users)
	for len(unknown) < cap(unknown) {
		unknown = append(unknown, uuid.NewString())
	}
	for _, c := range []struct {
		name            string
		ids             []string
		found, notFound int
	}{
		{"one user", e.ids[:1], 1, 0},
		{"every user and 976 unknown ids", append(slices.Clone(e.ids), unknown...), users, len(unknown)},
		{"unknown ids only", unknown[:10], 0, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			q0, _ := e.counts()
			status, raw := e.send(t, "POST", url, resolveBody(t, "order_updates", c.ids))
			q1, _ := e.counts()
			if status != http.StatusOK {
				t.Fatalf("status %d: %.300s", status, raw)
			}
			got := decodeResolve(t, raw)
			if len(got.Recipients) != c.found || len(got.NotFound) != c.notFound {
				t.Fatalf("%d recipients, %d not found; want %d, %d", len(got.Recipients), len(got.NotFound), c.found, c.notFound)
			}
			for _, r := range got.Recipients {
				email, push, sms := r.Channels["email"], r.Channels["push"], r.Channels["sms"]
				if !email.Send || email.Email == nil || !push.Send || len(push.PushTokens) == 0 ||
					sms.Send || sms.Reason == nil || *sms.Reason != usersvc.ReasonCategoryOff {
					t.Errorf("user %s: %+v", r.UserID, r.Channels)
				}
			}
			// The devices are not asked for when no user was found.
			if q := q1 - q0; q != 3 && (q != 2 || c.found > 0) {
				t.Errorf("%d SQL statements, want 3 (2 when no user is found)", q)
			}
		})
	}
}

// BenchmarkResolve measures POST /api/v1/recipients/resolve with 1000 ids
// (every one a user with one or two devices) on PostgreSQL with the cache
// off, next to GET /api/v1/users/{id} in the same run. It is skipped
// without USERSVC_TEST_POSTGRES_URL.
//
//	USERSVC_TEST_POSTGRES_URL=… go test -run '^$' -bench BenchmarkResolve -benchtime 20x -count 3 ./internal/httpapi/
func BenchmarkResolve(b *testing.B) {
	const users = 1000
	e := newBatchEnv(b, users)
	accounts := e.accounts(nil)
	if _, err := accounts.PutCategory(b.Context(), adminPrincipal(b, accounts), &usersvc.Category{Key: "order_updates", Name: "Order updates"}); err != nil {
		b.Fatal(err)
	}
	srv := e.server(nil)
	for _, r := range []struct {
		name, method, url string
		body              []byte
	}{
		{"resolve-1000", "POST", srv.URL + "/api/v1/recipients/resolve", resolveBody(b, "order_updates", e.ids)},
		{"get-user-baseline", "GET", srv.URL + "/api/v1/users/" + e.ids[0], nil},
	} {
		b.Run(r.name, func(b *testing.B) {
			if status, raw := e.send(b, r.method, r.url, r.body); status != http.StatusOK {
				b.Fatalf("%d %.200s", status, raw)
			}
			q0, _ := e.counts()
			for b.Loop() {
				if status, _ := e.send(b, r.method, r.url, r.body); status != http.StatusOK {
					b.Fatalf("status %d", status)
				}
			}
			q1, _ := e.counts()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(q1-q0)/float64(b.N), "sql/op")
		})
	}
}
