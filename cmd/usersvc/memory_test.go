package main

import (
	"io/fs"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	const v2, v1 = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	tests := []struct {
		name       string
		env        []string
		files      map[string]string
		want       int64
		wantSource string
	}{
		{"GOMEMLIMIT wins", []string{"GOMEMLIMIT=200MiB"}, map[string]string{v2: "104857600\n"}, 0, "GOMEMLIMIT"},
		{"cgroup v2 limit", nil, map[string]string{v2: "104857600\n"}, 94371840, v2},
		{"cgroup v2 without limit", nil, map[string]string{v2: "max\n"}, defaultMemoryLimit, "default"},
		{"cgroup v1 limit", nil, map[string]string{v1: "209715200\n"}, 188743680, v1},
		{"cgroup v1 without limit", nil, map[string]string{v1: "9223372036854771712\n"}, defaultMemoryLimit, "default"},
		{"no cgroup", nil, nil, defaultMemoryLimit, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, source := memoryLimit(env(tt.env...), files(tt.files))
			if got != tt.want || source != tt.wantSource {
				t.Errorf("memoryLimit = %d from %s, want %d from %s", got, source, tt.want, tt.wantSource)
			}
		})
	}
}

// Memory is returned once, in the first look without hashes after looks
// with some; never while hashes go on, never while idle.
func TestHashingStep(t *testing.T) {
	counts := []uint64{0, 0, 3, 9, 9, 9, 12, 12, 12}
	want := []bool{false, false, false, false, true, false, false, true, false}
	var last uint64
	busy := false
	for i, n := range counts {
		var free bool
		last, busy, free = hashingStep(last, n, busy)
		if free != want[i] {
			t.Errorf("look %d (count %d): free = %v, want %v", i, n, free, want[i])
		}
	}
}
