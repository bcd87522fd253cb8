package postgres

import "github.com/jackc/pgx/v5"

// An Option configures Open.
type Option func(*options)

type options struct {
	tracer pgx.QueryTracer
}

// WithTracer has every statement the store's connections run reported to
// t: to count them, to time them, or to export them as spans. t may also
// implement pgx's other tracer interfaces (batches, prepares, connects).
func WithTracer(t pgx.QueryTracer) Option {
	return func(o *options) { o.tracer = t }
}
