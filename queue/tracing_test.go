package queue_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgq/pgq/queue"
)

// headersOf reads a job's stored headers.
func headersOf(t *testing.T, b *bundle, id int64) map[string]any {
	t.Helper()
	j, err := b.client.Job(context.Background(), id)
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(j.Headers, &h))
	return h
}

func traceparentOf(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// TestEnqueueCarriesTraceContext: every way in (Enqueue, EnqueueTx,
// EnqueueMany, unique and plain) writes the W3C traceparent of the
// caller's span into the job's headers, keeps the caller's own headers,
// and writes nothing when the context carries no span.
func TestEnqueueCarriesTraceContext(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	want := traceparentOf(span.SpanContext())
	require.NotEmpty(t, want)

	var ids []int64
	e, err := b.client.Enqueue(ctx, queue.Raw{Task: "t"}, &queue.Options{Headers: map[string]any{"tenant": "acme"}})
	require.NoError(t, err)
	ids = append(ids, e.ID)
	e, err = b.client.Enqueue(ctx, queue.Raw{Task: "t"}, &queue.Options{UniqueKey: "u1"})
	require.NoError(t, err)
	ids = append(ids, e.ID)
	require.NoError(t, pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		e, err := b.client.EnqueueTx(ctx, tx, queue.Raw{Task: "t"}, nil)
		ids = append(ids, e.ID)
		return err
	}))
	many, err := b.client.EnqueueMany(ctx, []queue.Request{
		{Args: queue.Raw{Task: "t"}},
		{Args: queue.Raw{Task: "t"}, Options: &queue.Options{Headers: map[string]any{"n": 2}}},
		{Args: queue.Raw{Task: "t"}, Options: &queue.Options{UniqueKey: "u2"}},
	})
	require.NoError(t, err)
	for _, e := range many {
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		require.Equal(t, want, headersOf(t, b, id)["traceparent"], "job %d", id)
	}
	require.Equal(t, "acme", headersOf(t, b, ids[0])["tenant"])
	require.Equal(t, 2.0, headersOf(t, b, many[1].ID)["n"])

	// No span, no trace headers.
	e, err = b.client.Enqueue(context.Background(), queue.Raw{Task: "t"}, nil)
	require.NoError(t, err)
	require.Empty(t, headersOf(t, b, e.ID))
	many, err = b.client.EnqueueMany(context.Background(), []queue.Request{{Args: queue.Raw{Task: "t"}}})
	require.NoError(t, err)
	require.Empty(t, headersOf(t, b, many[0].ID))
}

// TestEnqueueTraceHeaderSetByCallerWins: a traceparent header the caller
// sets itself (copied from an incoming message, say) is kept.
func TestEnqueueTraceHeaderSetByCallerWins(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	mine := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	e, err := b.client.Enqueue(ctx, queue.Raw{Task: "t"}, &queue.Options{Headers: map[string]any{"traceparent": mine}})
	require.NoError(t, err)
	require.Equal(t, mine, headersOf(t, b, e.ID)["traceparent"])
}

// TestEnqueueUsesConfiguredPropagator: Config.Propagator decides what is
// written, here W3C trace context plus baggage.
func TestEnqueueUsesConfiguredPropagator(t *testing.T) {
	t.Parallel()
	b := setup(t, &queue.Config{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	m, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(m)
	require.NoError(t, err)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	e, err := b.client.Enqueue(ctx, queue.Raw{Task: "t"}, nil)
	require.NoError(t, err)
	h := headersOf(t, b, e.ID)
	require.Equal(t, traceparentOf(span.SpanContext()), h["traceparent"])
	require.Equal(t, "tenant=acme", h["baggage"])
}

// TestOnEnqueued reports each job written, not a duplicate.
func TestOnEnqueued(t *testing.T) {
	t.Parallel()
	var seen []queue.Enqueued
	b := setup(t, &queue.Config{OnEnqueued: func(e queue.Enqueued) { seen = append(seen, e) }})
	ctx := context.Background()
	_, err := b.client.Enqueue(ctx, queue.Raw{Task: "a"}, &queue.Options{UniqueKey: "k"})
	require.NoError(t, err)
	_, err = b.client.Enqueue(ctx, queue.Raw{Task: "a"}, &queue.Options{UniqueKey: "k"}) // duplicate
	require.NoError(t, err)
	_, err = b.client.EnqueueMany(ctx, []queue.Request{{Args: queue.Raw{Task: "b"}}, {Args: queue.Raw{Task: "c"}, Options: &queue.Options{Queue: "q2"}}})
	require.NoError(t, err)
	_, err = b.client.Enqueue(ctx, queue.Raw{Task: "bad name!"}, nil)
	require.Error(t, err)
	require.Len(t, seen, 3)
	require.Equal(t, []string{"a", "b", "c"}, []string{seen[0].Task, seen[1].Task, seen[2].Task})
	require.Equal(t, "q2", seen[2].Queue)
}

func TestWithTraceContext(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	want := traceparentOf(span.SpanContext())

	p, err := b.client.Prepare(queue.Raw{Task: "t"}, &queue.Options{Headers: map[string]any{"k": "v"}})
	require.NoError(t, err)
	var h map[string]string
	require.NoError(t, json.Unmarshal(b.client.WithTraceContext(ctx, p.Headers), &h))
	require.Equal(t, map[string]string{"traceparent": want, "k": "v"}, h)
	var h2 map[string]string
	require.NoError(t, json.Unmarshal(b.client.WithTraceContext(ctx, json.RawMessage(`{}`)), &h2))
	require.Equal(t, map[string]string{"traceparent": want}, h2)
	require.JSONEq(t, `{"k":"v"}`, string(b.client.WithTraceContext(context.Background(), p.Headers)))
	require.Equal(t, "[1]", string(b.client.WithTraceContext(ctx, json.RawMessage(`[1]`))))
}
