package worker_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestLogsUseStableKeys checks the worker's log records: a failed job at
// error level, a retried one at warn, a success at debug, each with
// job_id, task, queue, attempt, worker_id and duration; start and stop at
// info with worker_id.
func TestLogsUseStableKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.RegisterBuiltins(b.reg)
	logs := newCaptureHandler()
	r := b.start(t, b.config(func(c *worker.Config) { c.Logger = slog.New(logs) }))

	failed := b.enqueue(t, worker.FailArgs{Message: "no such customer", Permanent: true}, nil)
	retried := b.enqueue(t, worker.FailArgs{Message: "try again"}, &queue.Options{MaxRetries: queue.Ptr(1), RetryDelay: time.Hour})
	ok := b.enqueue(t, queue.Raw{Task: worker.TaskNoop}, nil)
	b.waitState(t, failed, queue.StateFailed)
	b.waitState(t, retried, queue.StateRetrying)
	b.waitState(t, ok, queue.StateSucceeded)
	require.NoError(t, r.stop(t))

	for _, tc := range []struct {
		id    int64
		msg   string
		level slog.Level
		task  string
	}{
		{failed, "job failed", slog.LevelError, worker.TaskFail},
		{retried, "job retrying", slog.LevelWarn, worker.TaskFail},
		{ok, "job succeeded", slog.LevelDebug, worker.TaskNoop},
	} {
		rec, found := logs.find(func(r capturedRecord) bool { return r.msg == tc.msg && r.attrs["job_id"] == tc.id })
		require.True(t, found, "a %q record for job %d; records: %v", tc.msg, tc.id, logs.messages())
		require.Equal(t, tc.level, rec.level, tc.msg)
		require.Equal(t, tc.task, rec.attrs["task"], tc.msg)
		require.Equal(t, queue.QueueDefault, rec.attrs["queue"], tc.msg)
		require.EqualValues(t, 1, rec.attrs["attempt"], tc.msg)
		require.Equal(t, r.w.ID(), rec.attrs["worker_id"], tc.msg)
		require.IsType(t, time.Duration(0), rec.attrs["duration"], tc.msg)
		if tc.level > slog.LevelDebug {
			require.Contains(t, rec.attrs, "error", tc.msg)
		}
	}
	for _, msg := range []string{"worker started", "worker stopped"} {
		rec, found := logs.find(func(r capturedRecord) bool { return r.msg == msg })
		require.True(t, found, msg)
		require.Equal(t, slog.LevelInfo, rec.level, msg)
		require.Equal(t, r.w.ID(), rec.attrs["worker_id"], msg)
	}
}

type capturedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

// captureHandler is a slog.Handler that keeps every record, with the
// attributes added by Logger.With, for tests to inspect.
type captureHandler struct {
	mu      *sync.Mutex
	records *[]capturedRecord
	with    []slog.Attr
}

func newCaptureHandler() *captureHandler {
	return &captureHandler{mu: &sync.Mutex{}, records: &[]capturedRecord{}}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]any{}
	for _, a := range h.with {
		attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, capturedRecord{level: r.Level, msg: r.Message, attrs: attrs})
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{mu: h.mu, records: h.records, with: append(slices.Clip(h.with), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

func (h *captureHandler) find(match func(capturedRecord) bool) (capturedRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range *h.records {
		if match(r) {
			return r, true
		}
	}
	return capturedRecord{}, false
}

func (h *captureHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msgs []string
	for _, r := range *h.records {
		msgs = append(msgs, r.msg)
	}
	return msgs
}
