package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/tracing"
	"github.com/usersvc/usersvc/internal/unsubscribe"
)

// config is the service's configuration, read once from the environment.
type config struct {
	Host                 string
	Port                 int
	DataDir              string
	DatabaseURL          string // postgres://… or sqlite:PATH
	RedisURL             string // empty: in-process cache
	SecretKey            string
	SecretKeyPrevious    []token.Secret // verify tokens, never sign
	JWTAlgorithm         string
	JWTPrivateKeyFile    string
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	ServiceKeys          account.ServiceKeys
	TrustedProxies       []netip.Prefix
	CORSAllowedOrigins   []string
	LogLevel             slog.Level
	LogFormat            string
	LogFlushInterval     time.Duration
	ShutdownTimeout      time.Duration
	DrainDelay           time.Duration
	RedisTimeout         time.Duration // bounds each call to Redis
	RefreshReuseInterval time.Duration // a spent refresh token's retry window
	HashConcurrency      int
	// RateLimits are the rules of RATE_LIMIT_*; a rule with Max 0 is off.
	RateLimits ratelimit.Limits
	// AdminPort serves /metrics and the profiler apart from the API; -1
	// (ADMIN_PORT unset) means no admin listener.
	AdminPort int
	// Events are the EVENTS_* settings: retention and the relay.
	Events eventsConfig
	// Near is the NEAR_CACHE* settings: the near cache in front of Redis.
	Near nearConfig
	// Tracing is where traces go, from the standard OTEL_* variables (see
	// loadTracing); no endpoint: off.
	Tracing tracing.Config
	// UnsubscribeKey signs the one-click unsubscribe links; empty: the key
	// generated once into DataDir (SQLite only, see loadUnsubscribe).
	UnsubscribeKey token.Secret
	// UnsubscribeKeyPrevious verify the links of retired keys, never sign.
	UnsubscribeKeyPrevious []token.Secret
	// PublicURL is where the service is reached from outside, without a
	// trailing slash: the base of the links it hands out.
	PublicURL string
	// publicURLDefault is set when PUBLIC_URL was not: the links then use
	// the port the listener got (which differs from Port when it is 0).
	publicURLDefault bool
	// PasswordResetTTL is how long a password reset token is valid.
	PasswordResetTTL time.Duration
	// ForgotPasswordFloor is the least time a forgotten-password request
	// takes: longer than the write that only a request for a real account
	// makes, so that the answer's timing does not tell whether an email
	// has an account.
	ForgotPasswordFloor time.Duration
	// PasswordResetURL is the operator's page for choosing a new password
	// (the token goes in its "token" query parameter); empty: no link.
	PasswordResetURL string
	// VerificationURL is the operator's page that confirms an email
	// (the token goes in its "token" query parameter); empty: no link.
	VerificationURL string
	// EmailChangeURL is the operator's page that confirms a change of
	// email (the token goes in its "token" query parameter); empty: no link.
	EmailChangeURL string
	// RequireVerified are the channels resolve sends on only to verified
	// addresses (REQUIRE_VERIFIED).
	RequireVerified []string
}

// postgres reports whether the database is PostgreSQL.
func (c *config) postgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// sqlitePath is the SQLite file of a sqlite: URL.
func (c *config) sqlitePath() string { return strings.TrimPrefix(c.DatabaseURL, "sqlite:") }

// configError names the variable that stopped the start.
type configError struct {
	name, problem string
}

func (e *configError) Error() string { return "config: " + e.name + ": " + e.problem }

// loadConfig reads the environment through getenv. The first bad variable
// stops it, with an error naming that variable.
func loadConfig(getenv func(string) string) (*config, error) {
	c := &config{
		Host:      getenv("HOST"),
		DataDir:   or(getenv("DATA_DIR"), "./data"),
		SecretKey: getenv("SECRET_KEY"),
	}
	var err error
	bad := func(name, format string, args ...any) error {
		return &configError{name: name, problem: fmt.Sprintf(format, args...)}
	}
	if c.Port, err = strconv.Atoi(or(getenv("PORT"), "8000")); err != nil || c.Port < 0 || c.Port > 65535 {
		return nil, bad("PORT", "must be a port number from 0 to 65535")
	}
	c.AdminPort = -1
	if v := getenv("ADMIN_PORT"); v != "" {
		if c.AdminPort, err = strconv.Atoi(v); err != nil || c.AdminPort < 0 || c.AdminPort > 65535 || (c.AdminPort != 0 && c.AdminPort == c.Port) {
			return nil, bad("ADMIN_PORT", "must be a port number from 0 to 65535 other than PORT, or unset")
		}
	}
	if c.DatabaseURL, err = databaseURL(getenv, c.DataDir); err != nil {
		return nil, err
	}
	if c.RedisURL, err = redisURL(getenv); err != nil {
		return nil, err
	}
	c.JWTAlgorithm = or(getenv("JWT_ALGORITHM"), "HS256")
	switch c.JWTAlgorithm {
	case "HS256", "EdDSA", "ES256", "RS256":
	default:
		return nil, bad("JWT_ALGORITHM", "must be one of HS256, EdDSA, ES256, RS256")
	}
	c.JWTPrivateKeyFile = getenv("JWT_PRIVATE_KEY_FILE")
	if c.SecretKey != "" && len(c.SecretKey) < 32 {
		return nil, bad("SECRET_KEY", "must be at least 32 characters long")
	}
	if c.SecretKeyPrevious, err = previousSecrets(getenv("SECRET_KEY_PREVIOUS"), c.SecretKey, c.JWTAlgorithm); err != nil {
		return nil, err
	}
	if c.postgres() {
		if c.JWTAlgorithm == "HS256" && c.SecretKey == "" {
			return nil, bad("SECRET_KEY", "must be set when the database is PostgreSQL (a generated key would live on one replica's disk)")
		}
		if c.JWTAlgorithm != "HS256" && c.JWTPrivateKeyFile == "" {
			return nil, bad("JWT_PRIVATE_KEY_FILE", "must be set for %s when the database is PostgreSQL", c.JWTAlgorithm)
		}
	}
	if c.UnsubscribeKey, c.UnsubscribeKeyPrevious, err = unsubscribeKeys(getenv, c.SecretKey); err != nil {
		return nil, err
	}
	c.publicURLDefault = strings.TrimSpace(getenv("PUBLIC_URL")) == ""
	if c.PublicURL, err = publicURL(getenv("PUBLIC_URL"), c.Port); err != nil {
		return nil, err
	}
	durations := []struct {
		name string
		def  string
		dst  *time.Duration
	}{
		{"ACCESS_TOKEN_LIFETIME", "15m", &c.AccessTokenLifetime},
		{"REFRESH_TOKEN_LIFETIME", "24h", &c.RefreshTokenLifetime},
		{"SHUTDOWN_TIMEOUT", "25s", &c.ShutdownTimeout},
		{"DRAIN_DELAY", "0s", &c.DrainDelay},
		{"REDIS_TIMEOUT", "50ms", &c.RedisTimeout},
		{"REFRESH_REUSE_INTERVAL", "10s", &c.RefreshReuseInterval},
		{"PASSWORD_RESET_TTL", "30m", &c.PasswordResetTTL},
		{"FORGOT_PASSWORD_FLOOR", "150ms", &c.ForgotPasswordFloor},
		{"LOG_FLUSH_INTERVAL", "100ms", &c.LogFlushInterval},
	}
	for _, d := range durations {
		v, err := time.ParseDuration(or(getenv(d.name), d.def))
		if err != nil || v < 0 || (v == 0 && strings.HasSuffix(d.name, "_LIFETIME")) {
			return nil, bad(d.name, "must be a positive Go duration such as 15m or 24h")
		}
		*d.dst = v
	}
	if c.RedisTimeout < time.Millisecond || c.RedisTimeout > 5*time.Second {
		return nil, bad("REDIS_TIMEOUT", "must be a Go duration from 1ms to 5s")
	}
	if c.PasswordResetTTL < time.Minute || c.PasswordResetTTL > 24*time.Hour {
		return nil, bad("PASSWORD_RESET_TTL", "must be a Go duration from 1m to 24h")
	}
	if c.LogFlushInterval > 10*time.Second {
		return nil, bad("LOG_FLUSH_INTERVAL", "must be a Go duration from 0s to 10s")
	}
	if c.ForgotPasswordFloor > 10*time.Second {
		return nil, bad("FORGOT_PASSWORD_FLOOR", "must be a Go duration from 0s to 10s")
	}
	if c.PasswordResetURL, err = pageURL(getenv("PASSWORD_RESET_URL")); err != nil {
		return nil, bad("PASSWORD_RESET_URL", "%v", err)
	}
	if c.VerificationURL, err = pageURL(getenv("VERIFICATION_URL")); err != nil {
		return nil, bad("VERIFICATION_URL", "%v", err)
	}
	if c.EmailChangeURL, err = pageURL(getenv("EMAIL_CHANGE_URL")); err != nil {
		return nil, bad("EMAIL_CHANGE_URL", "%v", err)
	}
	for ch := range strings.SplitSeq(getenv("REQUIRE_VERIFIED"), ",") {
		switch ch = strings.ToLower(strings.TrimSpace(ch)); ch {
		case "":
		case usersvc.ChannelEmail, usersvc.ChannelSMS:
			if !slices.Contains(c.RequireVerified, ch) {
				c.RequireVerified = append(c.RequireVerified, ch)
			}
		default:
			return nil, bad("REQUIRE_VERIFIED", "must be a comma-separated list of email and sms")
		}
	}
	if c.RefreshReuseInterval > time.Minute {
		return nil, bad("REFRESH_REUSE_INTERVAL", "must be a Go duration from 0s (no retries) to 1m")
	}
	if c.ServiceKeys, err = account.ParseServiceKeys(getenv("SERVICE_API_KEYS")); err != nil {
		return nil, bad("SERVICE_API_KEYS", "%s", usersvc.ErrorMessage(err))
	}
	for p := range strings.SplitSeq(getenv("TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, bad("TRUSTED_PROXIES", "%q is not a CIDR or an address", p)
			}
			prefix = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	for o := range strings.SplitSeq(getenv("CORS_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				return nil, bad("CORS_ALLOWED_ORIGINS", "%q is not an origin such as https://app.example.com", o)
			}
			o = u.Scheme + "://" + u.Host
		}
		c.CORSAllowedOrigins = append(c.CORSAllowedOrigins, o)
	}
	if err := c.LogLevel.UnmarshalText([]byte(or(getenv("LOG_LEVEL"), "info"))); err != nil {
		return nil, bad("LOG_LEVEL", "must be debug, info, warn or error")
	}
	c.LogFormat = or(getenv("LOG_FORMAT"), "json")
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return nil, bad("LOG_FORMAT", "must be json or text")
	}
	if v := getenv("PASSWORD_HASH_CONCURRENCY"); v != "" {
		if c.HashConcurrency, err = strconv.Atoi(v); err != nil || c.HashConcurrency < 1 {
			return nil, bad("PASSWORD_HASH_CONCURRENCY", "must be a whole number of at least 1")
		}
	}
	d := ratelimit.DefaultLimits()
	rules := []struct {
		name string
		def  ratelimit.Rule
		dst  *ratelimit.Rule
	}{
		{"RATE_LIMIT_LOGIN_EMAIL", d.LoginEmail, &c.RateLimits.LoginEmail},
		{"RATE_LIMIT_LOGIN_ADDRESS", d.LoginAddr, &c.RateLimits.LoginAddr},
		{"RATE_LIMIT_REGISTER_EMAIL", d.RegisterEmail, &c.RateLimits.RegisterEmail},
		{"RATE_LIMIT_REGISTER_ADDRESS", d.RegisterAddr, &c.RateLimits.RegisterAddr},
		{"RATE_LIMIT_FORGOT_EMAIL", d.ForgotEmail, &c.RateLimits.ForgotEmail},
		{"RATE_LIMIT_FORGOT_ADDRESS", d.ForgotAddr, &c.RateLimits.ForgotAddr},
		{"RATE_LIMIT_VERIFY_USER", d.VerifyUser, &c.RateLimits.VerifyUser},
	}
	for _, r := range rules {
		if *r.dst, err = rateRule(getenv(r.name), r.def); err != nil {
			return nil, bad(r.name, "%v", err)
		}
	}
	if c.Tracing, err = loadTracing(getenv); err != nil {
		return nil, err
	}
	if c.Events, err = loadEventsConfig(getenv); err != nil {
		return nil, err
	}
	if c.Near, err = loadNearConfig(getenv, c.RedisURL != ""); err != nil {
		return nil, err
	}
	return c, nil
}

// Bounds of a RATE_LIMIT_* rule: the counts are kept per key (a sorted set
// in Redis, a slice in the process), so the count is bounded too.
const (
	maxRateLimitCount  = 10_000
	minRateLimitWindow = time.Second
	maxRateLimitWindow = 24 * time.Hour
)

// rateRule reads one RATE_LIMIT_* variable: "off", or COUNT/WINDOW such
// as 5/15m (at most COUNT events per key within any WINDOW). Empty means
// def. An "off" rule has Max 0.
func rateRule(v string, def ratelimit.Rule) (ratelimit.Rule, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return def, nil
	case strings.EqualFold(v, "off"):
		def.Max, def.Window = 0, 0
		return def, nil
	}
	count, window, ok := strings.Cut(v, "/")
	n, nerr := strconv.Atoi(strings.TrimSpace(count))
	w, werr := time.ParseDuration(strings.TrimSpace(window))
	if !ok || nerr != nil || werr != nil || n < 1 || n > maxRateLimitCount || w < minRateLimitWindow || w > maxRateLimitWindow {
		return def, errors.New("must be off or COUNT/WINDOW such as 5/15m (COUNT from 1 to 10000, WINDOW a Go duration from 1s to 24h)")
	}
	def.Max, def.Window = n, w
	return def, nil
}

// previousSecrets reads SECRET_KEY_PREVIOUS: comma-separated HS256 secrets
// that verify tokens but never sign them, so that changing SECRET_KEY ends
// no session.
func previousSecrets(v, current, alg string) ([]token.Secret, error) {
	bad := func(problem string) error { return &configError{"SECRET_KEY_PREVIOUS", problem} }
	var out []token.Secret
	seen := map[string]bool{current: true}
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		switch {
		case alg != token.HS256:
			return nil, bad("applies to HS256 only; with " + alg + " list the keys in JWT_PRIVATE_KEY_FILE")
		case current == "":
			return nil, bad("needs SECRET_KEY, the secret that signs")
		case len(s) < token.MinSecretLen:
			return nil, bad("every secret must be at least 32 characters long")
		case seen[s]:
			return nil, bad("repeats SECRET_KEY or one of its own secrets")
		}
		seen[s] = true
		out = append(out, token.Secret(s))
	}
	return out, nil
}

// unsubscribeKeys reads UNSUBSCRIBE_KEY, the key of the unsubscribe links,
// and UNSUBSCRIBE_KEY_PREVIOUS, comma-separated keys that verify links
// signed before a rotation but never sign. The key is a secret of its own:
// it may not repeat SECRET_KEY. Whether it may be unset depends on the
// database, which loadUnsubscribe decides.
func unsubscribeKeys(getenv func(string) string, secretKey string) (token.Secret, []token.Secret, error) {
	current := getenv("UNSUBSCRIBE_KEY")
	switch {
	case current != "" && len(current) < unsubscribe.MinKeyLen:
		return nil, nil, &configError{"UNSUBSCRIBE_KEY", "must be at least 32 characters long"}
	case current != "" && current == secretKey:
		return nil, nil, &configError{"UNSUBSCRIBE_KEY", "must differ from SECRET_KEY"}
	}
	bad := func(problem string) error { return &configError{"UNSUBSCRIBE_KEY_PREVIOUS", problem} }
	var previous []token.Secret
	seen := map[string]bool{current: true}
	for k := range strings.SplitSeq(getenv("UNSUBSCRIBE_KEY_PREVIOUS"), ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		switch {
		case current == "":
			return nil, nil, bad("needs UNSUBSCRIBE_KEY, the key that signs")
		case len(k) < unsubscribe.MinKeyLen:
			return nil, nil, bad("every key must be at least 32 characters long")
		case seen[k]:
			return nil, nil, bad("repeats UNSUBSCRIBE_KEY or one of its own keys")
		}
		seen[k] = true
		previous = append(previous, token.Secret(k))
	}
	if current == "" {
		return nil, previous, nil
	}
	return token.Secret(current), previous, nil
}

// publicURL reads PUBLIC_URL: an absolute http or https URL, optionally
// with a path (a proxy's prefix) but no query, fragment or credentials.
// Unset, it is http://localhost and the port the service listens on. The
// result has no trailing slash. The error never repeats the value, which
// could hold a password.
func publicURL(v string, port int) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "http://localhost:" + strconv.Itoa(port), nil
	}
	u, err := url.Parse(v)
	ok := err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Opaque == "" && u.Hostname() != "" &&
		u.User == nil && !strings.ContainsAny(v, "?# ")
	if ok && u.Port() != "" {
		p, err := strconv.Atoi(u.Port())
		ok = err == nil && p >= 1 && p <= 65535
	}
	if !ok {
		return "", &configError{"PUBLIC_URL", "must be an absolute http:// or https:// URL such as https://users.example.com, without credentials, query or fragment"}
	}
	return strings.TrimRight(v, "/"), nil
}

// pageURL reads the URL of a page of the operator that a link of an event
// points to: empty, or an absolute http or https URL without credentials
// or fragment (a query is kept). The error never repeats the value.
func pageURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "" ||
		u.User != nil || strings.ContainsAny(v, "# ") {
		return "", errors.New("must be an absolute http:// or https:// URL such as https://app.example.com/reset, without credentials or fragment")
	}
	return v, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// databaseURL picks the database: DATABASE_URL, else the DB_* variables
// when DB_NAME is set, else the SQLite file in the data directory.
func databaseURL(getenv func(string) string, dataDir string) (string, error) {
	if v := getenv("DATABASE_URL"); v != "" {
		switch {
		case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
			if _, err := url.Parse(v); err != nil {
				return "", &configError{"DATABASE_URL", "is not a valid URL"}
			}
			return v, nil
		case strings.HasPrefix(v, "sqlite:"):
			if strings.TrimPrefix(v, "sqlite:") == "" {
				return "", &configError{"DATABASE_URL", "sqlite: needs a file path, as in sqlite:/var/lib/usersvc/usersvc.db"}
			}
			return v, nil
		}
		return "", &configError{"DATABASE_URL", "must start with postgres://, postgresql:// or sqlite:"}
	}
	if name := getenv("DB_NAME"); name != "" {
		port := or(getenv("DB_PORT"), "5432")
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return "", &configError{"DB_PORT", "must be a port number"}
		}
		u := url.URL{Scheme: "postgres", Host: or(getenv("DB_HOST"), "localhost") + ":" + port, Path: "/" + name}
		if user := getenv("DB_USER"); user != "" {
			if pw := getenv("DB_PASSWORD"); pw != "" {
				u.User = url.UserPassword(user, pw)
			} else {
				u.User = url.User(user)
			}
		}
		q := url.Values{}
		switch mode := getenv("DB_SSLMODE"); mode {
		case "":
		case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
			q.Set("sslmode", mode)
		default:
			return "", &configError{"DB_SSLMODE", "must be disable, allow, prefer, require, verify-ca or verify-full"}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return "sqlite:" + filepath.Join(dataDir, "usersvc.db"), nil
}

// redisURL picks Redis: REDIS_URL, else REDIS_HOST/REDIS_PORT/REDIS_PASSWORD,
// else none.
func redisURL(getenv func(string) string) (string, error) {
	if v := getenv("REDIS_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return "", &configError{"REDIS_URL", "must look like redis://[:password@]host:port/db"}
		}
		return v, nil
	}
	host := getenv("REDIS_HOST")
	if host == "" {
		return "", nil
	}
	port := or(getenv("REDIS_PORT"), "6379")
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", &configError{"REDIS_PORT", "must be a port number"}
	}
	u := url.URL{Scheme: "redis", Host: host + ":" + port, Path: "/0"}
	if pw := getenv("REDIS_PASSWORD"); pw != "" {
		u.User = url.UserPassword("", pw)
	}
	return u.String(), nil
}

// eventsConfig is the retention of the events and the relay to a broker.
type eventsConfig struct {
	BrokerURL  string // empty: no relay; amqp(s)://… or nats://… (tls://…)
	Exchange   string // RabbitMQ exchange; on NATS the subject prefix
	Stream     string // NATS JetStream stream
	Retention  time.Duration
	Lease      time.Duration
	Batch      int
	MaxBackoff time.Duration
}

// broker is "amqp", "nats" or "" (none).
func (e *eventsConfig) broker() string {
	switch {
	case strings.HasPrefix(e.BrokerURL, "amqp://"), strings.HasPrefix(e.BrokerURL, "amqps://"):
		return "amqp"
	case e.BrokerURL != "":
		return "nats"
	}
	return ""
}

// Bounds of the EVENTS_* settings.
const (
	minEventsRetention = time.Minute
	maxEventsRetention = 10 * 365 * 24 * time.Hour
	maxEventsBatch     = 10_000
)

var (
	brokerNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	streamNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func loadEventsConfig(getenv func(string) string) (eventsConfig, error) {
	bad := func(name, format string, args ...any) error {
		return &configError{name: name, problem: fmt.Sprintf(format, args...)}
	}
	e := eventsConfig{
		BrokerURL: strings.TrimSpace(getenv("EVENTS_BROKER_URL")),
		Exchange:  or(getenv("EVENTS_EXCHANGE"), "usersvc.events"),
		Stream:    or(getenv("EVENTS_NATS_STREAM"), "USERSVC_EVENTS"),
	}
	if e.BrokerURL != "" {
		for _, raw := range strings.Split(e.BrokerURL, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			ok := err == nil && u.Host != ""
			switch {
			case !ok:
			case e.broker() == "amqp":
				ok = !strings.Contains(e.BrokerURL, ",")
			default:
				ok = u.Scheme == "nats" || u.Scheme == "tls"
			}
			if !ok {
				return e, bad("EVENTS_BROKER_URL", "must be amqp://user:password@host:5672/vhost (or amqps://…) for RabbitMQ, or nats://host:4222 (or tls://…, comma-separated servers) for NATS")
			}
		}
	}
	if len(e.Exchange) > 200 || !brokerNameRe.MatchString(e.Exchange) {
		return e, bad("EVENTS_EXCHANGE", "must be dot-separated words of letters, digits, _ and - (at most 200 characters)")
	}
	if len(e.Stream) > 200 || !streamNameRe.MatchString(e.Stream) {
		return e, bad("EVENTS_NATS_STREAM", "must be letters, digits, _ and - (at most 200 characters)")
	}
	var err error
	if e.Retention, err = days(or(getenv("EVENTS_RETENTION"), "7d")); err != nil || e.Retention < minEventsRetention || e.Retention > maxEventsRetention {
		return e, bad("EVENTS_RETENTION", "must be a Go duration such as 72h, or whole days such as 7d, from 1m to 3650d")
	}
	if e.Lease, err = time.ParseDuration(or(getenv("EVENTS_RELAY_LEASE"), "10s")); err != nil || e.Lease < time.Second || e.Lease > 5*time.Minute {
		return e, bad("EVENTS_RELAY_LEASE", "must be a Go duration from 1s to 5m")
	}
	if e.Batch, err = strconv.Atoi(or(getenv("EVENTS_RELAY_BATCH"), "1000")); err != nil || e.Batch < 1 || e.Batch > maxEventsBatch {
		return e, bad("EVENTS_RELAY_BATCH", "must be a whole number from 1 to 10000")
	}
	if e.MaxBackoff, err = time.ParseDuration(or(getenv("EVENTS_RELAY_MAX_BACKOFF"), "10s")); err != nil || e.MaxBackoff < 100*time.Millisecond || e.MaxBackoff > 5*time.Minute {
		return e, bad("EVENTS_RELAY_MAX_BACKOFF", "must be a Go duration from 100ms to 5m")
	}
	return e, nil
}

// days reads a Go duration, or a whole number of days such as 7d.
func days(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 || d > 100_000 {
			return 0, errors.New("not a number of days")
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// nearConfig is the near cache in front of Redis (cache.Near).
type nearConfig struct {
	On    bool          // NEAR_CACHE=on
	Size  int           // entries kept in process
	Bound time.Duration // the staleness bound
	TTL   time.Duration // the longest an entry is kept
}

// loadNearConfig reads NEAR_CACHE, NEAR_CACHE_SIZE, NEAR_CACHE_BOUND and
// NEAR_CACHE_TTL. The near cache is off unless asked for: it trades the
// Redis cache's "every replica reads a write at once" for "within the
// bound", which clients may rely on.
func loadNearConfig(getenv func(string) string, redis bool) (nearConfig, error) {
	bad := func(name, problem string) error { return &configError{name: name, problem: problem} }
	var n nearConfig
	switch or(getenv("NEAR_CACHE"), "off") {
	case "on":
		n.On = true
	case "off":
	default:
		return n, bad("NEAR_CACHE", "must be on or off")
	}
	if n.On && !redis {
		return n, bad("NEAR_CACHE", "needs REDIS_URL (without Redis the cache is in process already)")
	}
	var err error
	if n.Size, err = strconv.Atoi(or(getenv("NEAR_CACHE_SIZE"), "10000")); err != nil || n.Size < 1 || n.Size > 10_000_000 {
		return n, bad("NEAR_CACHE_SIZE", "must be a whole number from 1 to 10000000")
	}
	if n.Bound, err = time.ParseDuration(or(getenv("NEAR_CACHE_BOUND"), "100ms")); err != nil || n.Bound < 20*time.Millisecond || n.Bound > 10*time.Second {
		return n, bad("NEAR_CACHE_BOUND", "must be a Go duration from 20ms to 10s")
	}
	if n.TTL, err = time.ParseDuration(or(getenv("NEAR_CACHE_TTL"), "1m")); err != nil || n.TTL < time.Second || n.TTL > 10*time.Minute {
		return n, bad("NEAR_CACHE_TTL", "must be a Go duration from 1s to 10m")
	}
	return n, nil
}
