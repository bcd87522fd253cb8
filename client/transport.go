package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds the body of an answer (a batch of 1000 users with
// their devices fits many times over).
const maxResponseBytes = 32 << 20

// request is one call to the service.
type request struct {
	method string
	path   string // escaped, from the base URL on
	query  url.Values
	body   any // sent as JSON when non-nil
	auth   bool
	// data and meta receive the envelope's members on success.
	data, meta any
	// bare answers are not in the envelope: the whole body goes to data,
	// and is decoded for any status whose body is JSON.
	bare bool
	// goneIsDone: a 404 after an attempt whose outcome is unknown means an
	// earlier attempt did the deletion.
	goneIsDone bool
	// retry marks a POST or PUT that is safe to repeat (it changes
	// nothing, or the same each time): it is retried as GET is.
	retry bool
	// probe calls are made once, and neither consult nor feed the circuit
	// breaker: they ask how the service is right now.
	probe bool
	// status, when set, receives the status of a success.
	status *int
	// hold is how long the service may hold the request before it answers
	// (a long poll): it lengthens the client's timeout of each attempt.
	hold time.Duration
}

// answer is what one attempt got back.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// envelope is the shape of every /api/v1 answer.
type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *string         `json:"error"`
	Message string          `json:"message"`
	Meta    json.RawMessage `json:"meta"`
}

// path builds an escaped path from literal parts and caller-given segments:
// every odd argument is a segment to escape.
func path(parts ...string) (string, error) {
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("usersvc: %w: %q is not a usable id", ErrInvalid, p)
		}
		b.WriteString(url.PathEscape(p))
	}
	return b.String(), nil
}

// do makes the call, with retries for GET, DELETE and r.retry, through the circuit
// breaker, and decodes the answer.
func (c *Client) do(ctx context.Context, r request) error {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("usersvc: %s %s: encoding the body: %w", r.method, r.path, err)
		}
	}
	attempts := 1
	if (r.method == http.MethodGet || r.method == http.MethodDelete || r.retry) && !r.probe {
		attempts = c.retry.Attempts
	}
	var (
		lastErr error
		unknown bool // an earlier attempt may have reached the service
	)
	for n := 1; ; n++ {
		var tok string
		if r.auth && c.token != nil {
			var err error
			if tok, err = c.token(ctx); err != nil {
				return fmt.Errorf("usersvc: %s %s: getting a token: %w", r.method, r.path, err)
			}
		}
		brk := c.breaker
		if r.probe {
			brk = nil
		}
		t, ok := brk.allow()
		if !ok {
			if lastErr != nil {
				return lastErr
			}
			return circuitOpen(r.method, r.path)
		}
		a, err := c.attempt(ctx, r, body, tok)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() != nil:
			brk.release(t)
			return fmt.Errorf("usersvc: %s %s: %w", r.method, r.path, err)
		case err != nil:
			brk.failure(t)
			lastErr, unknown = unavailable(r.method, r.path, err), true
		case a.status >= 500:
			brk.failure(t)
			lastErr = c.decode(r, a)
		case a.status == http.StatusTooManyRequests:
			brk.success(t)
			lastErr = c.decode(r, a)
			var e *Error
			if errors.As(lastErr, &e) {
				if e.RetryAfter > c.retry.MaxDelay {
					return lastErr
				}
				wait = e.RetryAfter
			}
		default:
			brk.success(t)
			if r.goneIsDone && unknown && a.status == http.StatusNotFound {
				return nil
			}
			return c.decode(r, a)
		}
		if n >= attempts {
			return lastErr
		}
		wait = max(wait, c.backoff(n))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return lastErr
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return lastErr
		case <-timer.C:
		}
	}
}

// backoff is the wait after the nth failed attempt: a random duration
// between half and all of min(MaxDelay, BaseDelay·2ⁿ⁻¹).
func (c *Client) backoff(n int) time.Duration {
	d := c.retry.BaseDelay
	for i := 1; i < n && d < c.retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.retry.MaxDelay)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// attempt sends the request once, within the client's timeout, and reads
// the whole answer. Its error means no answer was had.
func (c *Client) attempt(ctx context.Context, r request, body []byte, tok string) (*answer, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+r.hold)
		defer cancel()
	}
	u := c.base.String() + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("Accept", "application/json")
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	if id := RequestID(ctx); id != "" {
		h.Set("X-Request-ID", id)
	}
	if r.auth {
		if c.serviceKey != "" {
			h.Set("X-Service-API-Key", c.serviceKey)
		}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("answer larger than %d bytes", maxResponseBytes)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// decode turns an answer into the call's result: nil after filling r.data
// and r.meta on success, else an *Error.
func (c *Client) decode(r request, a *answer) error {
	ok := a.status >= 200 && a.status < 300
	if ok && r.status != nil {
		*r.status = a.status
	}
	if r.bare {
		if (ok || a.status == http.StatusServiceUnavailable) && r.data != nil && json.Valid(a.body) {
			if err := json.Unmarshal(a.body, r.data); err != nil && ok {
				return fmt.Errorf("usersvc: %s %s: decoding the answer: %w", r.method, r.path, err)
			}
		}
		if ok {
			return nil
		}
		return c.failure(r, a, nil)
	}
	var env envelope
	jsonErr := json.Unmarshal(a.body, &env)
	if !ok {
		if jsonErr != nil {
			return c.failure(r, a, nil)
		}
		return c.failure(r, a, &env)
	}
	if jsonErr != nil {
		return fmt.Errorf("usersvc: %s %s: the answer is not the service's JSON envelope: %w", r.method, r.path, jsonErr)
	}
	if r.data != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, r.data); err != nil {
			return fmt.Errorf("usersvc: %s %s: decoding the answer: %w", r.method, r.path, err)
		}
	}
	if r.meta != nil && len(env.Meta) > 0 {
		if err := json.Unmarshal(env.Meta, r.meta); err != nil {
			return fmt.Errorf("usersvc: %s %s: decoding the answer's meta: %w", r.method, r.path, err)
		}
	}
	return nil
}

// failure builds the *Error of an answer that is not a success.
func (c *Client) failure(r request, a *answer, env *envelope) *Error {
	e := &Error{
		Status:     a.status,
		RetryAfter: retryAfter(a.header.Get("Retry-After")),
		RequestID:  a.header.Get("X-Request-ID"),
		method:     r.method,
		path:       r.path,
	}
	if env != nil {
		e.data = env.Data
		switch {
		case env.Error != nil && *env.Error != "":
			e.Message = *env.Error
		default:
			e.Message = env.Message
		}
		if a.status == http.StatusBadRequest && len(env.Data) > 0 && env.Data[0] == '{' {
			var f map[string][]string
			if json.Unmarshal(env.Data, &f) == nil && len(f) > 0 {
				e.Fields = f
			}
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(a.status)
	}
	return e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
