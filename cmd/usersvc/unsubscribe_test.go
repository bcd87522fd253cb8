package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/internal/unsubscribe"
)

// The keys of the unsubscribe tests.
const (
	unsubKey      = "unsubscribe-current-key-0123456789abcdef"
	unsubOldKey   = "unsubscribe-old-key-that-is-long-enough-0"
	unsubOlderKey = "unsubscribe-older-key-that-is-long-enough"
	unsubSecret   = "secret-key-of-the-unsubscribe-tests-0123456"
)

var unsubClaims = unsubscribe.Claims{UserID: "3f0e5e2a-7f43-4c1a-9d55-0b8a1c2d3e4f", Category: "marketing", Channel: "email"}

// mustSigner is a signer of the given keys, made directly, to check what
// loadUnsubscribe built.
func mustSigner(t *testing.T, key string, previous ...string) *unsubscribe.Signer {
	t.Helper()
	prev := make([][]byte, len(previous))
	for i, p := range previous {
		prev[i] = []byte(p)
	}
	s, err := unsubscribe.New([]byte(key), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantConfigError fails unless err is the configError of name, on one line,
// without any of secrets.
func wantConfigError(t *testing.T, err error, name string, secrets ...string) {
	t.Helper()
	var ce *configError
	if !errors.As(err, &ce) || ce.name != name {
		t.Fatalf("error %v; want a configError of %s", err, name)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "config: "+name+": ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q does not name %s on one line", msg, name)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q shows a secret", msg)
		}
	}
}

// TestUnsubscribeKeyGenerated: on SQLite with no UNSUBSCRIBE_KEY the key is
// generated once into the data directory, kept there (0600) and reused, so
// the links of one start still work after the next.
func TestUnsubscribeKeyGenerated(t *testing.T) {
	dir := t.TempDir()
	cfg, err := loadConfig(env("DATA_DIR=" + dir))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	first, err := loadUnsubscribe(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "unsubscribe.key")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no key file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o", st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(data))
	if len(key) < unsubscribe.MinKeyLen {
		t.Fatalf("generated key of %d bytes", len(key))
	}
	if _, err := os.Stat(secretKeyFile(cfg)); err == nil {
		if other, _ := os.ReadFile(secretKeyFile(cfg)); strings.TrimSpace(string(other)) == key {
			t.Error("the unsubscribe key is the signing secret")
		}
	}
	if !strings.Contains(logs.String(), "UNSUBSCRIBE_KEY") || !strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Errorf("no warning naming UNSUBSCRIBE_KEY: %s", logs.String())
	}
	if strings.Contains(logs.String(), key) {
		t.Error("the log holds the generated key")
	}

	// The signer uses the key in the file.
	tok := first.Token(unsubClaims)
	if c, err := mustSigner(t, key).Verify(tok); err != nil || c != unsubClaims {
		t.Fatalf("a link does not verify under the key in the file: %+v, %v", c, err)
	}

	// A second start reuses it, quietly.
	logs.Reset()
	second, err := loadUnsubscribe(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := second.Verify(tok); err != nil || c != unsubClaims {
		t.Errorf("a link of the first start after the second: %+v, %v", c, err)
	}
	if second.Token(unsubClaims) != tok {
		t.Error("the second start signs with another key")
	}
	if again, _ := os.ReadFile(path); string(again) != string(data) {
		t.Error("the key file was rewritten")
	}
	if logs.Len() != 0 {
		t.Errorf("the second start logged: %s", logs.String())
	}

	// Another data directory is another key.
	elsewhere, err := loadConfig(env("DATA_DIR=" + t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	other, err := loadUnsubscribe(elsewhere, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(tok); !errors.Is(err, unsubscribe.ErrInvalid) {
		t.Errorf("a link verified under another data directory's key: %v", err)
	}

	// A damaged key file stops the start, without showing its content.
	short := t.TempDir()
	os.WriteFile(filepath.Join(short, "unsubscribe.key"), []byte("tiny-key-content\n"), 0o600)
	cfg.DataDir = short
	_, err = loadUnsubscribe(cfg, logger)
	if err == nil {
		t.Fatal("a short key file was accepted")
	}
	if strings.Contains(err.Error(), "tiny-key-content") {
		t.Errorf("error %q shows the file's content", err)
	}
}

// TestUnsubscribeKeyRequiredOnPostgres: replicas share a PostgreSQL
// database but not a disk, so a generated key would make each refuse the
// links of the others; the key must be set, and nothing is generated.
func TestUnsubscribeKeyRequiredOnPostgres(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, db := range [][]string{{"DATABASE_URL=postgres://u@h/db"}, {"DATABASE_URL=postgresql://u@h/db"}, {"DB_NAME=users"}} {
		t.Run(db[0], func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := loadConfig(env(append(db, "DATA_DIR="+dir, "SECRET_KEY="+unsubSecret)...))
			if err != nil {
				t.Fatal(err)
			}
			s, err := loadUnsubscribe(cfg, logger)
			if s != nil {
				t.Error("a signer without UNSUBSCRIBE_KEY on PostgreSQL")
			}
			wantConfigError(t, err, "UNSUBSCRIBE_KEY", unsubSecret)
			if _, err := os.Stat(filepath.Join(dir, "unsubscribe.key")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a key file was written on PostgreSQL: %v", err)
			}

			cfg, err = loadConfig(env(append(db, "DATA_DIR="+dir, "SECRET_KEY="+unsubSecret, "UNSUBSCRIBE_KEY="+unsubKey)...))
			if err != nil {
				t.Fatal(err)
			}
			if s, err = loadUnsubscribe(cfg, logger); err != nil {
				t.Fatal(err)
			}
			if c, err := mustSigner(t, unsubKey).Verify(s.Token(unsubClaims)); err != nil || c != unsubClaims {
				t.Errorf("the signer does not sign with UNSUBSCRIBE_KEY: %+v, %v", c, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "unsubscribe.key")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a key file was written although UNSUBSCRIBE_KEY is set: %v", err)
			}
		})
	}
}

func TestUnsubscribeKeyConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		env  []string
		name string
	}{
		{[]string{"UNSUBSCRIBE_KEY=" + unsubKey[:31]}, "UNSUBSCRIBE_KEY"},
		{[]string{"UNSUBSCRIBE_KEY=short"}, "UNSUBSCRIBE_KEY"},
		{[]string{"SECRET_KEY=" + unsubSecret, "UNSUBSCRIBE_KEY=" + unsubSecret}, "UNSUBSCRIBE_KEY"},
		{[]string{"UNSUBSCRIBE_KEY=" + unsubKey, "UNSUBSCRIBE_KEY_PREVIOUS=too-short"}, "UNSUBSCRIBE_KEY_PREVIOUS"},
		{[]string{"UNSUBSCRIBE_KEY=" + unsubKey, "UNSUBSCRIBE_KEY_PREVIOUS=" + unsubOldKey + ",too-short"}, "UNSUBSCRIBE_KEY_PREVIOUS"},
		{[]string{"UNSUBSCRIBE_KEY_PREVIOUS=" + unsubOldKey}, "UNSUBSCRIBE_KEY_PREVIOUS"},
		{[]string{"UNSUBSCRIBE_KEY=" + unsubKey, "UNSUBSCRIBE_KEY_PREVIOUS=" + unsubKey}, "UNSUBSCRIBE_KEY_PREVIOUS"},
		{[]string{"UNSUBSCRIBE_KEY=" + unsubKey, "UNSUBSCRIBE_KEY_PREVIOUS=" + unsubOldKey + "," + unsubOldKey}, "UNSUBSCRIBE_KEY_PREVIOUS"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.env, " "), func(t *testing.T) {
			err := run(t.Context(), []string{"migrate"}, env(append(c.env, "DATA_DIR="+dir)...), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("started with a bad unsubscribe key")
			}
			wantConfigError(t, err, c.name, unsubKey, unsubKey[:31], unsubOldKey, unsubSecret)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "unsubscribe.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start generated a key: %v", err)
	}
}

// TestUnsubscribeKeyPrevious: the previous keys are read, trimmed and in
// order; links of them verify, new links are signed with UNSUBSCRIBE_KEY,
// a link of a key in neither is refused, and no key ever prints.
func TestUnsubscribeKeyPrevious(t *testing.T) {
	cfg, err := loadConfig(env("DATA_DIR="+t.TempDir(), "UNSUBSCRIBE_KEY="+unsubKey,
		"UNSUBSCRIBE_KEY_PREVIOUS= "+unsubOldKey+" ,, "+unsubOlderKey+","))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.UnsubscribeKey) != unsubKey {
		t.Error("UNSUBSCRIBE_KEY was not kept as given")
	}
	if len(cfg.UnsubscribeKeyPrevious) != 2 || string(cfg.UnsubscribeKeyPrevious[0]) != unsubOldKey || string(cfg.UnsubscribeKeyPrevious[1]) != unsubOlderKey {
		t.Errorf("previous keys: %d", len(cfg.UnsubscribeKeyPrevious))
	}
	var logs bytes.Buffer
	s, err := loadUnsubscribe(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{unsubOldKey, unsubOlderKey} {
		if c, err := s.Verify(mustSigner(t, k).Token(unsubClaims)); err != nil || c != unsubClaims {
			t.Errorf("a link of a previous key: %+v, %v", c, err)
		}
	}
	if c, err := mustSigner(t, unsubKey).Verify(s.Token(unsubClaims)); err != nil || c != unsubClaims {
		t.Errorf("new links are not signed with UNSUBSCRIBE_KEY: %+v, %v", c, err)
	}
	if _, err := mustSigner(t, unsubOldKey).Verify(s.Token(unsubClaims)); !errors.Is(err, unsubscribe.ErrInvalid) {
		t.Error("new links are signed with a previous key")
	}
	if _, err := s.Verify(mustSigner(t, unsubSecret).Token(unsubClaims)); !errors.Is(err, unsubscribe.ErrInvalid) {
		t.Errorf("a link of an unknown key verified: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("loading set keys logged: %s", logs.String())
	}

	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("config", "cfg", cfg, "signer", s)
	out := []string{logs.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out = append(out, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, *cfg), fmt.Sprintf(verb, s))
	}
	for _, o := range out {
		for _, k := range []string{unsubKey, unsubOldKey, unsubOlderKey} {
			if strings.Contains(o, k) || strings.Contains(o, fmt.Sprintf("%x", k)) {
				t.Errorf("a key shows in %q", o)
			}
		}
	}
}

func TestPublicURL(t *testing.T) {
	for _, c := range []struct{ env, want string }{
		{"", "http://localhost:8000"},
		{"PORT=9090", "http://localhost:9090"},
		{"PUBLIC_URL=https://users.example.com", "https://users.example.com"},
		{"PUBLIC_URL=https://users.example.com/", "https://users.example.com"},
		{"PUBLIC_URL= https://example.com:8443/users/ ", "https://example.com:8443/users"},
		{"PUBLIC_URL=http://127.0.0.1:8000", "http://127.0.0.1:8000"},
		{"PUBLIC_URL=http://[::1]:8000/", "http://[::1]:8000"},
	} {
		cfg, err := loadConfig(env("DATA_DIR="+t.TempDir(), c.env))
		if err != nil {
			t.Errorf("%s: %v", c.env, err)
			continue
		}
		if cfg.PublicURL != c.want {
			t.Errorf("%s: PublicURL = %q, want %q", c.env, cfg.PublicURL, c.want)
		}
	}
	for _, v := range []string{
		"users.example.com",
		"/unsubscribe",
		"//users.example.com",
		"ftp://users.example.com",
		"mailto:users@example.com",
		"https:users.example.com",
		"https://",
		"https://:8443",
		"https://users.example.com/?utm=1",
		"https://users.example.com?",
		"https://users.example.com/#top",
		"https://admin:hunter2-password@users.example.com",
		"https://users.example.com:99999",
		"https://users.example.com:port",
		"https://users example.com",
		"https://users.example.com/a b",
		"https://users.example.com/\x00",
	} {
		t.Run(v, func(t *testing.T) {
			err := run(t.Context(), []string{"migrate"}, env("DATA_DIR="+t.TempDir(), "PUBLIC_URL="+v), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("started with a bad PUBLIC_URL")
			}
			wantConfigError(t, err, "PUBLIC_URL", "hunter2-password")
		})
	}
}
