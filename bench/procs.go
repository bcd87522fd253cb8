package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// proc is a server the harness started: usersvc or the bare server.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is waited for
	base   string        // http://127.0.0.1:PORT
	admin  string        // usersvc's admin listener (metrics, pprof); "" for bare
}

// buildUsersvc builds the service binary from the module around dir into out.
func buildUsersvc(ctx context.Context, moduleDir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/usersvc")
	cmd.Dir = moduleDir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build usersvc: %w", err)
	}
	return nil
}

// moduleRoot returns the directory of the go.mod the harness runs in.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness inside the usersvc module")
	}
	return filepath.Dir(mod), nil
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startUsersvc starts bin with env (on top of a minimal environment) and
// waits for its readiness. Its log goes to logPath.
func startUsersvc(ctx context.Context, name, bin string, env []string, logPath string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOST=127.0.0.1",
		"PORT=" + strconv.Itoa(port), "ADMIN_PORT=" + strconv.Itoa(adminPort)}, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), base: fmt.Sprintf("http://127.0.0.1:%d", port),
		admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	if err := waitReady(ctx, p.base+"/health/readiness"); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, logPath)
	}
	return p, nil
}

// startBare starts this program again as the bare server answering the
// bodies in dir, and reads its address from its first line of output.
func startBare(ctx context.Context, dir string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-bare", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bare server: %w", err)
	}
	p := &proc{name: "bare", cmd: cmd, exited: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bare server: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out); _ = cmd.Wait(); close(p.exited) }()
	p.base = "http://" + strings.TrimSpace(line)
	if err := waitReady(ctx, p.base+"/health/readiness"); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s).
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// memory is a process's resident set, now and at its peak, and the part of
// it that is pages of files (the binary's code and read-only data: clean,
// shared between processes of one binary, reclaimable), from
// /proc/PID/status.
type memory struct{ rss, hwm, file int64 } // bytes

func (p *proc) memory() memory {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		case "RssFile":
			m.file = kb << 10
		}
	}
	return m
}

// mallocs returns the process's count of heap allocations so far: usersvc's
// go_memstats_mallocs_total on its admin listener, the bare server's from
// its /memstats.
func (p *proc) mallocs(ctx context.Context) (float64, error) {
	if p.admin == "" {
		var v struct{ Mallocs float64 }
		if err := getJSON(ctx, p.base+"/memstats", &v); err != nil {
			return 0, err
		}
		return v.Mallocs, nil
	}
	m, err := p.metrics(ctx, "go_memstats_mallocs_total")
	return m["go_memstats_mallocs_total"], err
}

// metrics reads the named unlabelled series of usersvc's /metrics.
func (p *proc) metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && slices.Contains(names, name) {
			if out[name], err = strconv.ParseFloat(v, 64); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in /metrics", n)
		}
	}
	return out, sc.Err()
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
