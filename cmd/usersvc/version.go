package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion is the version stamped at link time:
//
//	go build -ldflags "-X main.buildVersion=v1.2.3" ./cmd/usersvc
//
// The Dockerfile sets it from its VERSION build argument. It is the one
// variable the linker writes; nothing assigns it at run time.
var buildVersion string

// version names the build: the stamped version; else the module version Go
// records from the git checkout it built in (a pseudo-version such as
// v0.0.0-20260101120000-0123456789ab, "+dirty" with uncommitted changes);
// else the commit alone; else "dev". `usersvc version`, /health and
// usersvc_build_info all report it.
func version() string {
	if v := strings.TrimSpace(buildVersion); v != "" {
		return v
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return "devel-" + rev[:min(12, len(rev))] + dirty
}
