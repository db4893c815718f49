package worker

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pgq/pgq/queue"
)

// tracerName is the instrumentation scope of the worker's spans.
const tracerName = "github.com/pgq/pgq/worker"

// tracing opens one span per attempt, a child of the trace context that
// the enqueuing code left in the job's headers (see queue.Config).
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// fields are the header names prop reads; a job whose headers
	// contain none of them is not decoded.
	fields [][]byte
	// w3c: prop reads no other headers than traceparent, tracestate and
	// baggage, so they can be decoded into a struct instead of a map.
	w3c bool
	// unset is OpenTelemetry's global provider while no program has set
	// one (nil when the worker was given a provider, or the global one
	// was set before New). Until one is set, its spans record nothing,
	// so an attempt whose headers carry no trace context gets no span.
	unset trace.TracerProvider
}

// newTracing returns the tracing of a worker, or nil when tp is a noop
// provider: then an attempt costs no tracing work at all.
func newTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) *tracing {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil
	}
	if prop == nil {
		prop = queue.DefaultPropagator()
	}
	t := &tracing{tracer: tp.Tracer(tracerName), prop: prop, w3c: true}
	if isUnsetGlobal(tp) {
		t.unset = tp
	}
	for _, f := range prop.Fields() {
		t.fields = append(t.fields, []byte(strconv.Quote(f)))
		if f != "traceparent" && f != "tracestate" && f != "baggage" {
			t.w3c = false
		}
	}
	return t
}

// isUnsetGlobal reports whether tp is the provider otel.GetTracerProvider
// returns while no program has called otel.SetTracerProvider: a
// delegating provider, internal to OpenTelemetry, whose spans record
// nothing until a real provider is set.
func isUnsetGlobal(tp trace.TracerProvider) bool {
	rt := reflect.TypeOf(tp)
	return rt.Kind() == reflect.Pointer && rt.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}

// start opens the attempt's span and puts it in the context the handler
// gets, so that the handler's own spans are its children.
//
// With the global provider still unset and no trace context in the
// headers, the span would record nothing and have no parent: a handler
// could not tell it from none, so none is made. A job that carries a
// trace context still gets its (non-recording) span, so that the
// handler's context carries that trace on to what it calls.
func (t *tracing) start(e *execution) {
	r := e.row
	ctx := e.ctx
	if t.hasFields(r.Meta) {
		ctx = t.prop.Extract(ctx, t.carrier(r.Meta))
	} else if t.unset != nil && otel.GetTracerProvider() == t.unset {
		return
	}
	ctx, span := t.tracer.Start(ctx, "pgq.process "+r.Task,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(e.start))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Int64("pgq.job.id", r.ID),
			attribute.String("pgq.job.task", r.Task),
			attribute.String("pgq.job.queue", r.Queue),
			attribute.Int("pgq.job.attempt", int(r.Attempt)),
			attribute.String("messaging.system", "pgq"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", r.Queue),
			attribute.String("messaging.message.id", strconv.FormatInt(r.ID, 10)),
			attribute.String("pgq.worker.id", e.w.cfg.WorkerID),
		)
	}
	e.ctx, e.span = ctx, span
}

// hasFields reports whether the headers may hold a trace context: a
// quick byte search that spares the JSON decoding of every job that
// carries none.
func (t *tracing) hasFields(meta []byte) bool {
	for _, f := range t.fields {
		if bytes.Contains(meta, f) {
			return true
		}
	}
	return false
}

// carrier decodes the trace headers of a job's headers (a JSON object).
func (t *tracing) carrier(meta []byte) propagation.TextMapCarrier {
	if t.w3c {
		var h w3cHeaders
		_ = json.Unmarshal(meta, &h) // undecodable headers carry no context
		return &h
	}
	return headerCarrier(meta)
}

// w3cHeaders are the headers of W3C Trace Context and Baggage: decoding
// them into a struct skips every other header without allocating.
type w3cHeaders struct {
	Traceparent string `json:"traceparent"`
	Tracestate  string `json:"tracestate"`
	Baggage     string `json:"baggage"`
}

// Get implements propagation.TextMapCarrier.
func (h *w3cHeaders) Get(key string) string {
	switch key {
	case "traceparent":
		return h.Traceparent
	case "tracestate":
		return h.Tracestate
	case "baggage":
		return h.Baggage
	}
	return ""
}

// Set implements propagation.TextMapCarrier; extraction never sets.
func (h *w3cHeaders) Set(string, string) {}

// Keys implements propagation.TextMapCarrier.
func (h *w3cHeaders) Keys() []string { return []string{"traceparent", "tracestate", "baggage"} }

// headerCarrier decodes a job's headers (a JSON object) into a carrier
// of their string values, for propagators that read other headers.
func headerCarrier(meta []byte) propagation.MapCarrier {
	var h map[string]any
	_ = json.Unmarshal(meta, &h) // undecodable headers carry no context
	c := make(propagation.MapCarrier, len(h))
	for k, v := range h {
		if s, ok := v.(string); ok {
			c[k] = s
		}
	}
	return c
}

// endSpan records an attempt's outcome on its span and ends it. Failed,
// retried and cancelled attempts get status Error; a snooze and a
// hand-back at shutdown are not errors.
func endSpan(span trace.Span, o *outcome) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("pgq.job.outcome", o.state))
		switch o.state {
		case stateRetrying:
			span.SetAttributes(attribute.Int64("pgq.job.retry_in_ms", o.delay.Milliseconds()))
		case stateScheduled:
			span.SetAttributes(attribute.Int64("pgq.job.snooze_ms", o.delay.Milliseconds()))
		}
		if o.err != nil && o.state != stateScheduled && o.state != stateAvailable {
			span.RecordError(o.err)
			span.SetStatus(codes.Error, o.err.Error())
		}
	}
	span.End()
}
