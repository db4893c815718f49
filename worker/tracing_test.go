package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// spansByJob groups the exported attempt spans by job id.
func spansByJob(spans tracetest.SpanStubs) map[int64][]tracetest.SpanStub {
	out := map[int64][]tracetest.SpanStub{}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if a.Key == "pgq.job.id" {
				out[a.Value.AsInt64()] = append(out[a.Value.AsInt64()], s)
			}
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return attribute.Value{}
}

// TestTraceFromEnqueueToWorker: the worker's span of each attempt is a
// child of the span that enqueued the job, carries the job's id, task,
// queue and attempt, has status Error when the attempt failed, and is the
// parent of the spans the handler makes; a job enqueued outside any span
// gets a root span.
func TestTraceFromEnqueueToWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	b.reg.HandleFunc("ok", func(ctx context.Context, _ *worker.Job[json.RawMessage]) (any, error) {
		_, inner := tp.Tracer("handler").Start(ctx, "handler work")
		inner.End()
		return nil, nil
	}, nil)
	b.reg.HandleFunc("bad", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		return nil, worker.Permanent(errors.New("broken on purpose"))
	}, nil)
	b.reg.HandleFunc("flaky", func(_ context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		if job.Attempt == 1 {
			return nil, worker.Retry(time.Millisecond)
		}
		return nil, nil
	}, nil)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "http request")
	// okID and badID are enqueued outside any span.
	okID := b.enqueue(t, queue.Raw{Task: "ok"}, nil)
	badID := b.enqueue(t, queue.Raw{Task: "bad"}, &queue.Options{Queue: "other"})
	e, err := b.client.Enqueue(ctx, queue.Raw{Task: "flaky"}, nil)
	require.NoError(t, err)
	flakyID := e.ID
	many, err := b.client.EnqueueMany(ctx, []queue.Request{{Args: queue.Raw{Task: "ok"}}})
	require.NoError(t, err)
	manyID := many[0].ID
	e, err = b.client.Enqueue(ctx, queue.Raw{Task: "ok"}, nil)
	require.NoError(t, err)
	tracedOK := e.ID
	e, err = b.client.Enqueue(ctx, queue.Raw{Task: "bad"}, &queue.Options{Queue: "other"})
	require.NoError(t, err)
	tracedBad := e.ID
	parent.End()

	b.start(t, b.config(func(c *worker.Config) {
		c.Queues = []string{"default", "other"}
		c.TracerProvider = tp
	}))
	for id, state := range map[int64]string{okID: "succeeded", badID: "failed", flakyID: "succeeded", manyID: "succeeded", tracedOK: "succeeded", tracedBad: "failed"} {
		b.waitState(t, id, state)
	}

	spans := spansByJob(exp.GetSpans())
	pc := parent.SpanContext()
	child := func(id int64, n int) []tracetest.SpanStub {
		t.Helper()
		require.Len(t, spans[id], n, "attempt spans of job %d", id)
		for _, s := range spans[id] {
			require.Equal(t, pc.TraceID(), s.SpanContext.TraceID(), "job %d", id)
			require.Equal(t, pc.SpanID(), s.Parent.SpanID(), "job %d", id)
			require.True(t, s.Parent.IsRemote())
			require.Equal(t, trace.SpanKindConsumer, s.SpanKind)
		}
		return spans[id]
	}

	s := child(tracedOK, 1)[0]
	require.Equal(t, "pgq.process ok", s.Name)
	require.Equal(t, "ok", attr(s, "pgq.job.task").AsString())
	require.Equal(t, "default", attr(s, "pgq.job.queue").AsString())
	require.Equal(t, int64(1), attr(s, "pgq.job.attempt").AsInt64())
	require.Equal(t, "succeeded", attr(s, "pgq.job.outcome").AsString())
	require.Equal(t, codes.Unset, s.Status.Code)

	s = child(tracedBad, 1)[0]
	require.Equal(t, "other", attr(s, "pgq.job.queue").AsString())
	require.Equal(t, codes.Error, s.Status.Code)
	require.Contains(t, s.Status.Description, "broken on purpose")
	require.Equal(t, "failed", attr(s, "pgq.job.outcome").AsString())

	flaky := child(flakyID, 2)
	byAttempt := map[int64]tracetest.SpanStub{}
	for _, s := range flaky {
		byAttempt[attr(s, "pgq.job.attempt").AsInt64()] = s
	}
	require.Equal(t, codes.Error, byAttempt[1].Status.Code)
	require.Equal(t, "retrying", attr(byAttempt[1], "pgq.job.outcome").AsString())
	require.Equal(t, codes.Unset, byAttempt[2].Status.Code)
	child(manyID, 1)

	// Jobs enqueued outside any span get a root span each.
	for _, id := range []int64{okID, badID} {
		require.Len(t, spans[id], 1)
		require.False(t, spans[id][0].Parent.IsValid(), "job %d has a parent span", id)
	}

	// The handler's own span is a child of the attempt's.
	var inner []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "handler work" {
			inner = append(inner, s)
		}
	}
	require.Len(t, inner, 3) // okID, manyID, tracedOK
	attempt := map[trace.SpanID]bool{}
	for _, id := range []int64{okID, manyID, tracedOK} {
		attempt[spans[id][0].SpanContext.SpanID()] = true
	}
	for _, s := range inner {
		require.True(t, attempt[s.Parent.SpanID()], "handler span's parent is not an attempt span")
	}
}

// TestTracingOffWithNoopProvider: with a noop provider the worker makes
// no span and does not even read the trace context from the headers.
func TestTracingOffWithNoopProvider(t *testing.T) {
	t.Parallel()
	b := setup(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	got := make(chan trace.SpanContext, 1)
	b.reg.HandleFunc("ok", func(ctx context.Context, _ *worker.Job[json.RawMessage]) (any, error) {
		got <- trace.SpanContextFromContext(ctx)
		return nil, nil
	}, nil)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	e, err := b.client.Enqueue(ctx, queue.Raw{Task: "ok"}, nil)
	require.NoError(t, err)
	parent.End()
	b.start(t, b.config(func(c *worker.Config) { c.TracerProvider = noop.NewTracerProvider() }))
	b.waitState(t, e.ID, "succeeded")
	require.False(t, (<-got).IsValid())
	require.Len(t, exp.GetSpans(), 1) // the test's own
}

// renamedTraceContext is W3C Trace Context under another header name: a
// propagator whose headers the worker must decode the generic way.
type renamedTraceContext struct{}

func (renamedTraceContext) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	m := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, m)
	if v := m.Get("traceparent"); v != "" {
		c.Set("x-trace", v)
	}
}

func (renamedTraceContext) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": c.Get("x-trace")})
}

func (renamedTraceContext) Fields() []string { return []string{"x-trace"} }

// TestTraceWithConfiguredPropagator: client and worker configured with
// the same non-W3C propagator still link the attempt to its enqueuer.
func TestTraceWithConfiguredPropagator(t *testing.T) {
	t.Parallel()
	b := setup(t)
	client, err := queue.NewClient(b.db.Pool, &queue.Config{Schema: b.db.Schema, Propagator: renamedTraceContext{}})
	require.NoError(t, err)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b.reg.HandleFunc("ok", func(context.Context, *worker.Job[json.RawMessage]) (any, error) { return nil, nil }, nil)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	e, err := client.Enqueue(ctx, queue.Raw{Task: "ok"}, &queue.Options{Headers: map[string]any{"other": 1}})
	require.NoError(t, err)
	parent.End()
	require.Contains(t, string(b.job(t, e.ID).Headers), `"x-trace"`)

	b.start(t, b.config(func(c *worker.Config) {
		c.TracerProvider = tp
		c.Propagator = renamedTraceContext{}
	}))
	b.waitState(t, e.ID, "succeeded")
	spans := spansByJob(exp.GetSpans())[e.ID]
	require.Len(t, spans, 1)
	require.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent.SpanID())
	require.Equal(t, parent.SpanContext().TraceID(), spans[0].SpanContext.TraceID())
}
