package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/pgtest"
)

func TestImportDjangoUsage(t *testing.T) {
	cfg, err := loadConfig(env("DATA_DIR=" + t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--from"}, {"--from", "postgres://x/y", "extra"}, {"--unknown"}} {
		err := importDjango(t.Context(), cfg, args, env(), io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("import-django %q = %v, want a usage error", args, err)
		}
	}
}

func TestImportDjangoUnreachableSource(t *testing.T) {
	cfg, err := loadConfig(env("DATA_DIR=" + t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	err = importDjango(t.Context(), cfg, []string{"--from", "postgres://nobody@127.0.0.1:1/django?connect_timeout=2"}, env(), io.Discard, io.Discard)
	var u usageError
	if err == nil || errors.As(err, &u) {
		t.Errorf("import-django from a closed port = %v, want a failure", err)
	}
}

// TestImportDjango imports the Django dump into the embedded SQLite store,
// twice: the second run imports nothing.
func TestImportDjango(t *testing.T) {
	url := pgtest.NewDatabase(t)
	loadDjangoDump(t, url)
	cfg, err := loadConfig(env("DATA_DIR=" + t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	if err := importDjango(t.Context(), cfg, []string{"--from", url}, env(), &out, io.Discard); err != nil {
		t.Fatalf("import-django: %v\n%s", err, out.String())
	}
	for _, line := range []string{"users seen:                  8", "users imported:              8", "devices imported:            2", "problems:                    0"} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("first import: no line %q in\n%s", line, out.String())
		}
	}

	out.Reset()
	if err := importDjango(t.Context(), cfg, nil, env("DJANGO_DATABASE_URL="+url), &out, io.Discard); err != nil {
		t.Fatalf("import-django from DJANGO_DATABASE_URL: %v\n%s", err, out.String())
	}
	for _, line := range []string{"users imported:              0", "users already present:       8", "devices imported:            0"} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("second import: no line %q in\n%s", line, out.String())
		}
	}
}

// loadDjangoDump loads the dump of the Django service, kept beside the
// repository, into the database at url.
func loadDjangoDump(t *testing.T, url string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// cmd/usersvc is two levels below the repository root.
	dump := filepath.Join(wd, "..", "..", "..", "shared", "fixtures", "django", "users_seed.sql")
	if _, err := os.Stat(dump); err != nil {
		t.Fatalf("Django dump: %v", err)
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql is needed to load the Django dump: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", dump).CombinedOutput(); err != nil {
		t.Fatalf("psql -f users_seed.sql: %v\n%s", err, out)
	}
}
