package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pgq/pgq/db"
)

// nopObserver is an Observer that does nothing, to time the hook itself.
type nopObserver struct{}

func (nopObserver) Started(Start)  {}
func (nopObserver) Finished(Event) {}

// BenchmarkAttemptHooks times what the observability hooks add to one
// attempt (begin, then end), without the database:
//
//	go test -run '^$' -bench AttemptHooks ./worker/
func BenchmarkAttemptHooks(b *testing.B) {
	traced := json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)
	exp := tracetest.NewInMemoryExporter()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(1<<20)))
	b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	for _, c := range []struct {
		name string
		cfg  Config
		meta json.RawMessage
	}{
		{"off", Config{TracerProvider: noop.NewTracerProvider()}, traced},
		{"observer", Config{TracerProvider: noop.NewTracerProvider(), Observer: nopObserver{}}, traced},
		{"global-unset/no-headers", Config{TracerProvider: otel.GetTracerProvider()}, json.RawMessage(`{}`)},
		{"global-unset/traceparent", Config{TracerProvider: otel.GetTracerProvider()}, traced},
		{"sdk/traceparent", Config{TracerProvider: sdk}, traced},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.tracing = newTracing(cfg.TracerProvider, nil)
			w := &Worker{cfg: cfg}
			row := &db.ClaimJobsRow{ID: 1, Task: "t", Queue: "default", Attempt: 1, Meta: c.meta, RunAt: time.Now(), CreatedAt: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				e := &execution{w: w, row: row, start: time.Now(), ctx: context.Background()}
				w.begin(e)
				e.end(&outcome{state: stateSucceeded})
				exp.Reset()
			}
		})
	}
}

// TestTracingUnsetGlobal: with OpenTelemetry's global provider unset, an
// attempt whose headers carry no trace context gets no span at all, one
// that carries a trace context gets a span that passes it on to the
// handler; once a program sets the global provider, every attempt gets
// its span again.
func TestTracingUnsetGlobal(t *testing.T) {
	t.Parallel()
	traced := json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)
	begin := func(tr *tracing, meta json.RawMessage) *execution {
		w := &Worker{cfg: Config{tracing: tr}}
		e := &execution{w: w, row: &db.ClaimJobsRow{ID: 1, Task: "t", Queue: "default", Attempt: 1, Meta: meta}, start: time.Now(), ctx: context.Background()}
		w.begin(e)
		return e
	}

	tr := newTracing(nil, nil)
	require.NotNil(t, tr)
	require.Equal(t, otel.GetTracerProvider(), tr.unset, "the test binary sets no global provider")
	e := begin(tr, json.RawMessage(`{}`))
	require.Nil(t, e.span)
	require.False(t, trace.SpanContextFromContext(e.ctx).IsValid())
	e = begin(tr, traced)
	require.NotNil(t, e.span)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", trace.SpanContextFromContext(e.ctx).TraceID().String())

	// A global provider set after New: otel.GetTracerProvider no longer
	// returns the unset one.
	tr = newTracing(nil, nil)
	tr.unset = noop.NewTracerProvider()
	e = begin(tr, json.RawMessage(`{}`))
	require.NotNil(t, e.span)

	require.Nil(t, newTracing(sdktrace.NewTracerProvider(), nil).unset)
}
