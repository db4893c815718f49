package queue

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// DefaultPropagator is the propagator pgq uses when none is configured:
// the global one (otel.SetTextMapPropagator), or W3C Trace Context
// (traceparent, tracestate) when no global propagator has been set, so
// that a trace goes from the enqueuing code to the worker with no set-up.
// Clients and workers read it once, when they are made.
func DefaultPropagator() propagation.TextMapPropagator {
	p := otel.GetTextMapPropagator()
	if len(p.Fields()) == 0 {
		return propagation.TraceContext{}
	}
	return p
}

// traceMembers returns the trace context of ctx, written by the client's
// propagator, as the members of a JSON object without its braces
// (`"traceparent":"00-…"`), or nil when ctx carries no span and no
// baggage: then enqueue costs nothing more.
func (c *Client) traceMembers(ctx context.Context) []byte {
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return nil
	}
	carrier := propagation.MapCarrier{}
	c.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]string(carrier))
	if err != nil || len(b) < 2 {
		return nil
	}
	return b[1 : len(b)-1]
}

// withTrace returns a job's headers (a JSON object, as prepare encodes
// them) with the trace members put first. A header the caller set under
// the same name comes later in the object and wins: jsonb keeps the last
// of duplicate keys.
func withTrace(meta, members []byte) []byte {
	if len(members) == 0 || len(meta) < 2 || meta[0] != '{' {
		return meta
	}
	out := make([]byte, 0, len(meta)+len(members)+2)
	out = append(out, '{')
	out = append(out, members...)
	if string(meta) != "{}" {
		out = append(out, ',')
	}
	return append(out, meta[1:]...)
}

// traced adds the trace context of ctx to the headers of one prepared job.
func (c *Client) traced(ctx context.Context, p prepared) prepared {
	p.meta = withTrace(p.meta, c.traceMembers(ctx))
	return p
}

// observe reports a job the client has just written to OnEnqueued (a
// duplicate of a unique job was not written and is not reported).
func (c *Client) observe(e Enqueued, err error) (Enqueued, error) {
	if err == nil && c.onEnqueued != nil && !e.Duplicate {
		c.onEnqueued(e)
	}
	return e, err
}

// observeMany reports the jobs of a bulk enqueue to OnEnqueued.
func (c *Client) observeMany(out []Enqueued, err error) ([]Enqueued, error) {
	if err == nil && c.onEnqueued != nil {
		for _, e := range out {
			if !e.Duplicate {
				c.onEnqueued(e)
			}
		}
	}
	return out, err
}

// WithTraceContext returns headers (a JSON object, such as
// Prepared.Headers) with the trace context of ctx added as Enqueue adds
// it, for code that inserts prepared jobs itself. Headers that are not a
// JSON object, and a ctx with no span, leave them as they are.
func (c *Client) WithTraceContext(ctx context.Context, headers json.RawMessage) json.RawMessage {
	return withTrace(headers, c.traceMembers(ctx))
}
