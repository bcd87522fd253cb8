package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
)

func TestVersionOf(t *testing.T) {
	cases := []struct {
		main     string
		settings map[string]string
		want     string
	}{
		{"v1.4.0", nil, "v1.4.0"},
		{"v0.0.0-20260101120000-0123456789ab+dirty", map[string]string{"vcs.revision": "0123456789abcdef"}, "v0.0.0-20260101120000-0123456789ab+dirty"},
		{"(devel)", map[string]string{"vcs.revision": "0123456789abcdef0123", "vcs.modified": "true"}, "devel-0123456789ab+dirty"},
		{"(devel)", map[string]string{"vcs.revision": "0123456789abcdef0123", "vcs.modified": "false"}, "devel-0123456789ab"},
		{"(devel)", nil, "dev"},
		{"", nil, "dev"},
	}
	for _, c := range cases {
		bi := &debug.BuildInfo{Main: debug.Module{Version: c.main}}
		for k, v := range c.settings {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		if got := versionOf(bi); got != c.want {
			t.Errorf("versionOf(%q, %v) = %q, want %q", c.main, c.settings, got, c.want)
		}
	}
}

// buildWith compiles the command with extra go build flags.
func buildWith(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "usersvc")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %v: %v\n%s", flags, err, out)
	}
	return bin
}

// reportedVersions runs bin and returns the version that `usersvc version`,
// GET /health and usersvc_build_info report.
func reportedVersions(t *testing.T, bin string) (cli, health, metric string) {
	t.Helper()
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("usersvc version: %v", err)
	}
	cli = strings.TrimPrefix(strings.TrimSpace(string(out)), "usersvc ")

	p := startProcess(t, bin, "DATA_DIR="+t.TempDir())
	req, _ := http.NewRequest("GET", p.base+"/health", nil)
	st, body := send(t, req)
	if st != http.StatusOK {
		t.Fatalf("/health: %d %v", st, body)
	}
	health, _ = body["version"].(string)

	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	re := regexp.MustCompile(`^usersvc_build_info\{.*version="([^"]*)".*\} 1$`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			metric = m[1]
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("exit: %v", err)
	}
	return cli, health, metric
}

// TestVersionStamped builds the binary as the Dockerfile does (-X
// main.buildVersion) and checks that the command, /health and the build
// info metric all report the stamped version.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const want = "v9.8.7-stamped"
	bin := buildWith(t, "-ldflags", "-X main.buildVersion="+want)
	cli, health, metric := reportedVersions(t, bin)
	if cli != want || health != want || metric != want {
		t.Errorf("usersvc version %q, /health %q, usersvc_build_info %q; want %q for all", cli, health, metric, want)
	}
}

// TestVersionFromGitCheckout builds the binary with VCS stamping, as a
// plain `go build` in a git checkout does, and checks that the three agree
// on a version naming the checked-out commit.
func TestVersionFromGitCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (or no git): %v", err)
	}
	rev := strings.TrimSpace(string(head))[:12]
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		t.Skip("a linked worktree (.git is a file): go stamps no VCS information there")
	}
	// GOFLAGS may hold -buildvcs=false; the flag on the command line wins.
	bin := buildWith(t, "-buildvcs=true")
	cli, health, metric := reportedVersions(t, bin)
	if !strings.Contains(cli, rev) || health != cli || metric != cli {
		t.Errorf("usersvc version %q, /health %q, usersvc_build_info %q; want one version naming commit %s", cli, health, metric, rev)
	}
}
