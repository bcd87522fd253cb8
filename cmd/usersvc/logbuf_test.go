package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the buffer's timer goroutine,
// counting the writes it receives.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Writes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes
}

func bufferedLogger(w *lockedBuffer, every time.Duration) (*slog.Logger, *logBuffer) {
	lb := newLogBuffer(w, every)
	return newLogger(&config{LogLevel: slog.LevelInfo, LogFormat: "json"}, lb), lb
}

func TestLogBufferHoldsLinesForItsInterval(t *testing.T) {
	var out lockedBuffer
	logger, lb := bufferedLogger(&out, 150*time.Millisecond)
	defer lb.Close()
	logger.Info("first")
	logger.Info("second")
	if got := out.String(); got != "" {
		t.Fatalf("written before the interval: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"msg":"second"`) {
		if time.Now().After(deadline) {
			t.Fatal("the lines were never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := out.Writes(); n != 1 {
		t.Errorf("two lines took %d writes, want 1", n)
	}
	// The timer is armed again by the next line.
	logger.Info("third")
	for !strings.Contains(out.String(), `"msg":"third"`) {
		if time.Now().After(deadline) {
			t.Fatal("the line after the first flush was never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLogBufferWritesWarningsAtOnceAndInOrder(t *testing.T) {
	var out lockedBuffer
	logger, lb := bufferedLogger(&out, time.Hour)
	defer lb.Close()
	logger.Info("before")
	logger.With("k", "v").Warn("trouble")
	got := out.String()
	i, j := strings.Index(got, `"msg":"before"`), strings.Index(got, `"msg":"trouble"`)
	if i < 0 || j < 0 || i > j {
		t.Fatalf("after a warning: %q; want the info line, then the warning", got)
	}
	logger.Error("worse")
	if !strings.Contains(out.String(), `"msg":"worse"`) {
		t.Fatal("an error was held back")
	}
	logger.Info("after")
	if strings.Contains(out.String(), `"msg":"after"`) {
		t.Fatal("an info line after the warning was written at once")
	}
}

func TestLogBufferWritesWhenFull(t *testing.T) {
	var out lockedBuffer
	logger, lb := bufferedLogger(&out, time.Hour)
	defer lb.Close()
	pad := strings.Repeat("x", 1000)
	for i := 0; out.Writes() == 0; i++ {
		if i > 2*logBufferSize/1000 {
			t.Fatalf("%d lines of 1 KB and nothing written", i)
		}
		logger.Info("line", "pad", pad)
	}
	if n := len(out.String()); n < logBufferSize {
		t.Errorf("first write of %d bytes, want at least %d", n, logBufferSize)
	}
}

func TestLogBufferCloseWritesAndLaterLinesGoAtOnce(t *testing.T) {
	var out lockedBuffer
	logger, lb := bufferedLogger(&out, time.Hour)
	logger.Info("pending")
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"msg":"pending"`) {
		t.Fatal("Close did not write the pending line")
	}
	logger.Info("late")
	if !strings.Contains(out.String(), `"msg":"late"`) {
		t.Fatal("a line after Close was held")
	}
}

func TestLogBufferIntervalZeroWritesEveryLine(t *testing.T) {
	var out lockedBuffer
	logger, lb := bufferedLogger(&out, 0)
	defer lb.Close()
	for i := range 3 {
		logger.Info("line", "i", i)
		if n := out.Writes(); n != i+1 {
			t.Fatalf("after %d lines, %d writes", i+1, n)
		}
	}
}

// Lines logged from many goroutines at once all arrive, whole, each once.
func TestLogBufferConcurrentLinesArriveWhole(t *testing.T) {
	for round := range 3 {
		var out lockedBuffer
		logger, lb := bufferedLogger(&out, time.Millisecond*time.Duration(round))
		const workers, lines = 8, 2000
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range lines {
					if i%500 == 499 {
						logger.Warn("line", "w", w, "i", i)
					} else {
						logger.Info("line", "w", w, "i", i, "pad", strings.Repeat("p", i%300))
					}
				}
			})
		}
		wg.Wait()
		if err := lb.Close(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for l := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
			var rec struct{ W, I int }
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("round %d: a line that is not whole JSON: %q", round, l)
			}
			k := fmt.Sprint(rec.W, "/", rec.I)
			if seen[k] {
				t.Fatalf("round %d: line %s twice", round, k)
			}
			seen[k] = true
		}
		if len(seen) != workers*lines {
			t.Fatalf("round %d: %d lines, want %d", round, len(seen), workers*lines)
		}
	}
}
