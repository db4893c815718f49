package worker

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fuzzArgs has a field of most kinds JSON decodes into, and nests itself.
type fuzzArgs struct {
	Name  string            `json:"name"`
	N     int               `json:"n"`
	U     uint8             `json:"u"`
	F     float64           `json:"f"`
	OK    bool              `json:"ok"`
	Tags  []string          `json:"tags"`
	Count map[string]int    `json:"count"`
	Any   any               `json:"any"`
	Raw   json.RawMessage   `json:"raw"`
	Next  *fuzzArgs         `json:"next"`
	Arr   [2]int8           `json:"arr"`
	Meta  map[string]string `json:"meta,omitempty"`
}

func (fuzzArgs) TaskName() string { return "fuzz.args" }

// decodeWith runs the decoding wrapper of Register, as a worker does, for
// a handler taking T; it returns the args the handler saw.
func decodeWith[T interface{ TaskName() string }](t *testing.T, data []byte) (T, bool) {
	t.Helper()
	var got T
	called := false
	h := typed[T](func(_ context.Context, job *Job[T]) (any, error) {
		called = true
		got = job.Args
		return nil, nil
	})
	task := taskName[T]()
	_, err := h.Work(context.Background(), &Job[json.RawMessage]{Info: &Info{Task: task}, Args: data})
	if err != nil {
		if called {
			t.Fatalf("%s: handler ran although decoding failed: %v", task, err)
		}
		if !errors.Is(err, ErrBadArgs) {
			t.Fatalf("%s: args %q: error %v does not match ErrBadArgs", task, data, err)
		}
		var perm *PermanentError
		if !errors.As(err, &perm) {
			t.Fatalf("%s: args %q: error %v is not permanent", task, data, err)
		}
		if !strings.Contains(err.Error(), task) {
			t.Fatalf("%s: error %v does not name the task", task, err)
		}
		if json.Valid(data) && !strings.Contains(err.Error(), "json: ") {
			t.Fatalf("%s: error %v does not give the decoder's reason", task, err)
		}
		return got, false
	}
	if !called {
		t.Fatalf("%s: handler did not run", task)
	}
	if !json.Valid(data) {
		t.Fatalf("%s: invalid JSON %q was decoded into %+v", task, data, got)
	}
	return got, true
}

// FuzzDecodeArgs: a typed handler's args decoding, by value and by
// pointer, never panics; bad input fails the job permanently with
// ErrBadArgs before the handler runs; decoded args survive being encoded
// and decoded again (the producer's side of the same type).
func FuzzDecodeArgs(f *testing.F) {
	f.Add([]byte(`{"name":"ada","n":1,"tags":["x"],"next":{"n":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, ok := decodeWith[fuzzArgs](t, data)
		p, pok := decodeWith[*fuzzArgs](t, data)
		if ok != pok {
			t.Fatalf("args %q: by value ok=%v, by pointer ok=%v", data, ok, pok)
		}
		if !ok {
			return
		}
		if !reflect.DeepEqual(&v, p) {
			t.Fatalf("args %q: by value %+v, by pointer %+v", data, v, p)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encode decoded args %+v: %v", v, err)
		}
		w, ok := decodeWith[fuzzArgs](t, again)
		if !ok {
			t.Fatalf("re-encoded args %s do not decode", again)
		}
		if again2, _ := json.Marshal(w); string(again2) != string(again) {
			t.Fatalf("args do not round-trip:\n%s\n%s", again, again2)
		}
		// The builtins decode the same bytes without panicking too.
		decodeWith[SleepArgs](t, data)
		decodeWith[FailArgs](t, data)
	})
}
