package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickstartScript runs examples/quickstart.sh, the README's quick
// start, against a fresh server (the built binary, a new data directory)
// and fails when any of its steps answers another status than the one the
// script expects. It needs bash and curl: without them it skips, except in
// CI, where it fails.
func TestQuickstartScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the quick start needs %s: %v", tool, err)
			}
			t.Skipf("the quick start needs %s: %v", tool, err)
		}
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "examples", "quickstart.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const key = "quickstart-key-0123456789"
	// The server and create-admin share the data directory, as they do in
	// a checkout; nothing else is configured.
	settings := []string{"DATA_DIR=" + dir, "DATABASE_URL=", "REDIS_URL=", "SECRET_KEY=", "JWT_ALGORITHM=",
		"SERVICE_API_KEYS=quickstart:" + key}
	p := startProcess(t, bin, settings...)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = t.TempDir() // the script finds the repository itself
	cmd.Env = append(os.Environ(), append(settings, "BASE="+p.base, "SERVICE_KEY="+key, "USERSVC="+bin)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/quickstart.sh: %v\n%s\nserver log:\n%s", err, out, p.logs.String())
	}
	if !strings.Contains(string(out), "quickstart: every step answered as expected") {
		t.Fatalf("examples/quickstart.sh ended early:\n%s", out)
	}
	for _, step := range []string{"POST /api/v1/users/ -> 201", "POST /api/v1/users/refresh -> 200", "admin created:",
		"POST /api/v1/users/batch -> 200", "POST /api/v1/users/logout -> 200", "POST /api/v1/users/refresh -> 401"} {
		if !strings.Contains(string(out), step) {
			t.Errorf("the quick start did not show %q", step)
		}
	}
}
