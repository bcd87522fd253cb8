package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBufferSize is how many bytes of log lines a logBuffer holds before it
// writes them without waiting for its interval.
const logBufferSize = 64 << 10

// logBuffer batches the log lines the service writes while it serves: a
// line is written at most its interval after it was logged, or sooner when
// 64 KiB are waiting, when a warning or an error is logged (see
// flushingHandler), or when the buffer is closed. One write(2) per request
// was the largest cost of the read path the service itself adds; a batch
// of lines costs one. slog's handlers write each record with one Write,
// so lines are never split. An interval of 0 writes every line at once.
type logBuffer struct {
	w     io.Writer
	every time.Duration

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer
	armed  bool // the timer will flush
	closed bool
}

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	return &logBuffer{w: w, every: every}
}

// Write keeps p, a whole log line, to be written with the next flush.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.every <= 0 || b.closed {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logBufferSize {
		return len(p), b.flushLocked()
	}
	if !b.armed {
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.every, b.timed)
		} else {
			b.timer.Reset(b.every)
		}
	}
	return len(p), nil
}

// timed is the timer's flush.
func (b *logBuffer) timed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	_ = b.flushLocked()
}

// Flush writes the lines waiting.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// Close writes the lines waiting; later lines are written at once.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
		b.armed = false
	}
	return b.flushLocked()
}

func (b *logBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 4*logBufferSize {
		b.buf = nil // a burst's buffer is not kept
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// flushingHandler writes the buffered lines at once after a record of
// level flushAt or above, so that warnings and errors are never held back.
type flushingHandler struct {
	slog.Handler
	buf     *logBuffer
	flushAt slog.Level
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.flushAt {
		if ferr := h.buf.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.buf, h.flushAt}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf, h.flushAt}
}
