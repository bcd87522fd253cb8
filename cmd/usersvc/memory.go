package main

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// defaultMemoryLimit is the Go runtime's soft memory limit when neither
// GOMEMLIMIT nor a cgroup memory limit sets one: a bound on runaway growth,
// well above what the service needs. A login storm on two cores holds about
// 60 MiB of heap (two argon2id hashes of 19 MiB each, collected after each
// hash, see password.WithCollectAfterHash), a full in-process cache of
// 50,000 users some 30 MiB more. A limit close to the heap in use costs
// more than it saves: the runtime then collects almost continuously and
// gives the hashes' pages back to the system between hashes, so that each
// hash faults 19 MiB of fresh pages in (a limit of 48 MiB made logins two
// to three times as slow on a 2-core virtual machine).
const defaultMemoryLimit = 128 << 20

// cgroupShare is the part of a container's memory limit the Go heap may
// take; the rest is for what the runtime does not count (the binary's
// mapped code, thread stacks outside Go).
const cgroupShare = 0.9

// Where the memory limit of the process's cgroup is read: cgroup v2, then
// v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// memoryLimit chooses the soft memory limit of the Go runtime: none when
// GOMEMLIMIT is set (the runtime has applied it itself), else 90% of the
// cgroup's memory limit when there is one, else defaultMemoryLimit. It
// returns the limit (0 for "leave it") and where it comes from.
func memoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) (int64, string) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, "GOMEMLIMIT"
	}
	for _, f := range cgroupMemoryFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// "max" (v2) or a huge number (v1) is no limit.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			break
		}
		return int64(float64(n) * cgroupShare), f
	}
	return defaultMemoryLimit, "default"
}

// setMemoryLimit sets the soft memory limit memoryLimit chooses from the
// process's environment. It is the process's, so main calls it, not run.
func setMemoryLimit() {
	if limit, _ := memoryLimit(os.Getenv, os.ReadFile); limit > 0 {
		debug.SetMemoryLimit(limit)
	}
}

// memoryReturnPeriod is how often returnMemoryAfterHashing looks: the
// memory of a login storm is returned 5 to 10 seconds after its last hash.
const memoryReturnPeriod = 5 * time.Second

// hashCounter counts password hashes, for returnMemoryAfterHashing.
type hashCounter struct{ n atomic.Uint64 }

func (c *hashCounter) observe(time.Duration) { c.n.Add(1) }

// returnMemoryAfterHashing gives the memory of the password hashes back to
// the operating system once they stop: every period it looks whether any
// hash ran since the last look, and after a period with hashes that is
// followed by one without, it calls free (debug.FreeOSMemory: a collection,
// then every free page returned). Otherwise the runtime returns the pages
// of a login storm only gradually, and not at all while the process is
// idle and allocates nothing.
func returnMemoryAfterHashing(ctx context.Context, hashes *hashCounter, period time.Duration, free func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	var last uint64
	busy := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var doFree bool
		last, busy, doFree = hashingStep(last, hashes.n.Load(), busy)
		if doFree {
			free()
		}
	}
}

// hashingStep is one look of returnMemoryAfterHashing: the count of hashes
// last time and now, and whether hashes ran in the period before; it
// returns the state of the next look and whether to free memory now.
func hashingStep(last, now uint64, busy bool) (nextLast uint64, nextBusy, free bool) {
	if now != last {
		return now, true, false
	}
	return now, false, busy
}
