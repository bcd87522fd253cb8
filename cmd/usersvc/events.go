package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/usersvc/usersvc/internal/metrics"
	"github.com/usersvc/usersvc/internal/relay"
	"github.com/usersvc/usersvc/internal/tracing"
)

// eventStore is what the command needs of the store for the events: the
// relay's port and pruning.
type eventStore interface {
	relay.Store
	PruneEvents(ctx context.Context, before time.Time, keepUnpublished bool) (int, error)
}

// newRelay returns the relay to the configured broker, or nil when none
// is configured. It connects nothing: Run does. With tracing on, each
// batch it publishes is a span.
func newRelay(cfg *config, st relay.Store, m *metrics.Metrics, logger *slog.Logger, t *tracing.Tracing) *relay.Relay {
	var b relay.Broker
	switch cfg.Events.broker() {
	case "amqp":
		b = &relay.AMQP{URL: cfg.Events.BrokerURL, Exchange: cfg.Events.Exchange}
	case "nats":
		b = &relay.NATS{URL: cfg.Events.BrokerURL, Stream: cfg.Events.Stream, Prefix: cfg.Events.Exchange}
	default:
		return nil
	}
	var tp trace.TracerProvider
	if t != nil && t.Enabled() {
		tp = t.Provider
	}
	return relay.New(st, b, relay.Options{
		Tracer:     tp,
		Holder:     relayHolder(),
		Lease:      cfg.Events.Lease,
		BatchSize:  cfg.Events.Batch,
		MaxBackoff: cfg.Events.MaxBackoff,
		Logger:     logger,
		Observer:   m,
	})
}

// relayHolder names this process in the relay lease: the host name (the
// pod's, in Kubernetes) and a random suffix, so that a restarted process
// is a new holder.
func relayHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "usersvc"
	}
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// startEvents starts the relay (when a broker is configured) and the
// pruning of old events; the returned stop ends both and waits for them,
// the relay releasing its lease so that another replica takes over at once.
func (a *app) startEvents(ctx context.Context, st eventStore) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if a.relay != nil {
		a.logger.Info("events relay configured", slog.String("broker", a.cfg.Events.broker()),
			slog.String("exchange", a.cfg.Events.Exchange), slog.Duration("lease", a.cfg.Events.Lease))
		wg.Go(func() { a.relay.Run(ctx) })
	}
	wg.Go(func() { pruneEvents(ctx, st, a.cfg.Events.Retention, a.relay != nil, a.logger) })
	return func() { cancel(); wg.Wait() }
}

// pruneEvents removes the events older than retention at start and then
// every quarter of the retention (at most hourly). With a broker, events
// no broker has confirmed stay, however old: they are still on their way.
func pruneEvents(ctx context.Context, st eventStore, retention time.Duration, keepUnpublished bool, logger *slog.Logger) {
	every := min(max(retention/4, 15*time.Second), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := st.PruneEvents(ctx, time.Now().UTC().Add(-retention), keepUnpublished)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("pruning old events failed", slog.Any("error", err))
		case n > 0:
			logger.Info("pruned old events", slog.Int("events", n), slog.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
