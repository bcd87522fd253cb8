package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc"
	"github.com/usersvc/usersvc/internal/account"
)

type ctxKey int

const reqInfoKey ctxKey = 0

// reqInfo is what the middleware and the handlers of one request share,
// held in one context value: the request id, who made the request (for
// the access log), the client, and the principal that authenticate found.
type reqInfo struct {
	id        string
	userID    string
	service   string
	client    account.Client
	principal account.Principal
}

// setUser records who made the request, for the access log.
func setUser(r *http.Request, userID, service string) {
	if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
		ri.userID, ri.service = userID, service
	}
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(reqInfoKey).(*reqInfo); ok {
		return ri.id
	}
	return ""
}

// validRequestID accepts ids of 1 to 64 characters from a safe set, so a
// client's id can be echoed and logged without risk.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Values of the headers every answer carries, shared by all answers: a
// header value is only ever replaced, never changed in place, so one slice
// serves every request without an allocation.
var (
	headerNosniff  = []string{"nosniff"}
	headerDeny     = []string{"DENY"}
	headerNoRef    = []string{"no-referrer"}
	headerNoStore  = []string{"no-store"}
	headerJSONType = []string{"application/json"}
)

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// middleware wraps the routes with what every request gets: a request id,
// security headers, CORS, a time bound, panic recovery and an access log.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: r.Header.Get("X-Request-ID")}
		if !validRequestID(ri.id) {
			ri.id = newRequestID()
		}
		ri.client = account.Client{Addr: s.cfg.TrustedProxies(r), UserAgent: r.UserAgent()}
		ctx := context.WithValue(r.Context(), reqInfoKey, ri)
		ctx = account.WithClient(ctx, &ri.client)
		// The change feed holds a request for up to its wait, on top of the
		// bound of its work.
		limit := s.cfg.RequestTimeout
		if r.URL.Path == eventsPath {
			limit += account.MaxEventsWait
		}
		dctx, cancel := withDeadline(ctx, start.Add(limit))
		defer cancel()
		ctx = dctx
		r = r.WithContext(ctx)

		h := w.Header()
		h["X-Request-Id"] = []string{ri.id}
		h["X-Content-Type-Options"] = headerNosniff
		h["X-Frame-Options"] = headerDeny
		h["Referrer-Policy"] = headerNoRef
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h["Cache-Control"] = headerNoStore
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(ctx, "panic serving request", slog.Any("panic", v), slog.String("request_id", ri.id))
				if rec.status == 0 {
					msg := "Internal server error"
					writeJSON(rec, http.StatusInternalServerError, envelope{Error: &msg, Message: msg})
				}
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("route", routeOf(r)),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.Int("bytes", rec.bytes),
				slog.String("request_id", ri.id),
				slog.String("client_ip", ri.client.Addr),
			}
			if ri.userID != "" {
				attrs = append(attrs, slog.String("user_id", ri.userID))
			}
			if ri.service != "" {
				attrs = append(attrs, slog.String("service", ri.service))
			}
			s.logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		}()
		if s.cors(rec, r) {
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// cors applies the origin allowlist. It answers preflight requests itself
// and reports whether it did. Origins are never reflected unless listed.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.CORSAllowedOrigins) == 0 {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	wildcard := slices.Contains(s.cfg.CORSAllowedOrigins, "*")
	switch {
	case slices.Contains(s.cfg.CORSAllowedOrigins, origin):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	case wildcard:
		// Any origin, but never with credentials.
		h.Set("Access-Control-Allow-Origin", "*")
	default:
		return false
	}
	h.Set("Access-Control-Expose-Headers", "X-Request-ID, Retry-After")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID, X-Service-API-Key")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// msgAmbiguousCredentials answers a request that presents more than one credential.
const msgAmbiguousCredentials = "Send one credential: one Authorization header or one X-Service-API-Key header"

// authenticate runs h with the caller's principal in the request context:
// the user of a bearer access token in Authorization, or the service of a
// key in X-Service-API-Key, or nobody when neither is sent. Bad credentials
// are a 401; two Authorization headers, two keys, or a token and a key are
// a 400, since no one of them is the caller. Tokens are never read from the
// URL.
func authenticate(accounts *account.Service, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		auth, keys := r.Header.Values("Authorization"), r.Header.Values("X-Service-API-Key")
		if len(auth) > 1 || len(keys) > 1 || len(auth) == 1 && auth[0] != "" && len(keys) == 1 && keys[0] != "" {
			return usersvc.Errorf(usersvc.EInvalid, msgAmbiguousCredentials)
		}
		var bearer, key string
		if len(auth) == 1 && auth[0] != "" {
			scheme, tok, ok := strings.Cut(auth[0], " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
				return usersvc.Errorf(usersvc.EUnauthorized, "Authorization header must be: Bearer <token>")
			}
			bearer = strings.TrimSpace(tok)
		}
		if len(keys) == 1 {
			key = keys[0]
		}
		p, err := accounts.Authenticate(r.Context(), bearer, key)
		if err != nil {
			return err
		}
		ri, ok := r.Context().Value(reqInfoKey).(*reqInfo)
		if !ok {
			return errNoMiddleware
		}
		ri.userID, ri.service, ri.principal = p.UserID, p.Service, p
		return h(w, r)
	}
}

// errNoMiddleware is the error of a route served without the middleware,
// which no request of NewServer's handler is.
var errNoMiddleware = errors.New("httpapi: a route was served without the middleware")

// principalOf returns the caller that authenticate found: the anonymous
// principal on a route without it.
func principalOf(r *http.Request) account.Principal {
	if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
		return ri.principal
	}
	return account.Principal{}
}

// pathUserID returns the {user_id} path segment, lowercased when it is a
// UUID; anything that is not a UUID is returned as it is, for the access
// rule to refuse.
func pathUserID(r *http.Request) string {
	s := r.PathValue("user_id")
	if len(s) != 36 {
		return s
	}
	id, err := uuid.Parse(s)
	if err != nil || strings.ToLower(s) == s {
		return s // not a UUID, or already in canonical form (no copy)
	}
	return id.String()
}

// checkTarget answers, before any route sees them, requests whose target
// no route should read: a path segment or a query key or value that holds
// NUL or is not valid UTF-8 (400), and a path that is not in its clean form
// (a "//", "." or ".." segment), which ServeMux would answer with an HTML
// redirect (404). Both answers are the envelope, never cached.
func (s *Server) checkTarget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch {
		case !cleanText(r.URL.Path):
			err = usersvc.Errorf(usersvc.EInvalid, "The path must be valid UTF-8 without NUL characters")
		case r.URL.RawQuery != "" && !cleanQuery(r.URL.Query()):
			err = usersvc.Errorf(usersvc.EInvalid, "Query parameters must be valid UTF-8 without NUL characters")
		case r.URL.EscapedPath() != cleanPath(r.URL.EscapedPath()):
			err = usersvc.Errorf(usersvc.ENotFound, "Not found")
		default:
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fail(w, r, s.logger, err)
	})
}

// cleanText reports whether s is valid UTF-8 without NUL.
func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// cleanQuery reports whether every key and value of q is cleanText.
func cleanQuery(q url.Values) bool {
	for k, vs := range q {
		if !cleanText(k) || slices.ContainsFunc(vs, func(v string) bool { return !cleanText(v) }) {
			return false
		}
	}
	return true
}

// cleanPath is the form ServeMux redirects a path to: rooted, without
// empty, "." or ".." segments, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// RemoteAddr returns the address of the peer, ignoring X-Forwarded-For.
func RemoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// TrustProxies returns a resolver that believes X-Forwarded-For only when
// the peer is in one of prefixes: it walks the header from the right and
// returns the first address that is not a trusted proxy.
func TrustProxies(prefixes []netip.Prefix) ClientIPResolver {
	trusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := RemoteAddr(r)
		if len(prefixes) == 0 || !trusted(peer) {
			return peer
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := strings.TrimSpace(hops[i])
			a, err := netip.ParseAddr(hop)
			if err != nil {
				return peer
			}
			if !trusted(hop) {
				return a.Unmap().String()
			}
		}
		return peer
	}
}

// routeOf returns the route pattern that served r ("GET /api/v1/users/{user_id}"),
// the same for the forms with and without a trailing slash, or "unmatched".
func routeOf(r *http.Request) string {
	p := strings.TrimSuffix(r.Pattern, "/{$}")
	switch {
	case p == "" || p == "/":
		return "unmatched"
	case strings.HasSuffix(p, " "): // "GET /{$}", the root path alone
		return p + "/"
	}
	return p
}
