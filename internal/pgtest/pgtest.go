// Package pgtest gives tests a fresh PostgreSQL database of their own.
//
// The server is named by the environment variable USERSVC_TEST_POSTGRES_URL,
// for example postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
// The role it names must be allowed to create databases. When the variable
// is unset, tests that need PostgreSQL are skipped; when it is set and the
// server cannot be reached, they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that names the test server.
const EnvURL = "USERSVC_TEST_POSTGRES_URL"

// EnvRequire, when set (as CI sets it), makes a missing EnvURL a failure
// instead of a skip.
const EnvRequire = "USERSVC_REQUIRE_INTEGRATION"

// timeout bounds each administrative step (connect, create, drop).
const timeout = 30 * time.Second

// NewDatabase creates an empty database named usersvc_test_<random hex> on
// the server of USERSVC_TEST_POSTGRES_URL, drops it (closing any connection
// still open to it) when the test ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" && os.Getenv(EnvRequire) != "" {
		t.Fatalf("%s is set but %s is not: the PostgreSQL integration tests must run", EnvRequire, EnvURL)
	}
	if admin == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run this test", EnvURL)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: random database name: %v", err)
	}
	name := "usersvc_test_" + hex.EncodeToString(b[:])
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}

	exec(t, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		exec(t, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return dbURL
}

// exec runs one statement on a connection of its own to the admin database.
func exec(t testing.TB, admin, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// withDatabase returns the connection string admin with its database
// replaced by name. It takes both URLs and keyword/value strings.
func withDatabase(admin, name string) (string, error) {
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	return admin + " dbname=" + name, nil
}
