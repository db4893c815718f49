package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refName is the naming rule written out by hand, as the documentation of
// ValidateTaskName and ValidateQueueName states it: 1 to max bytes of ASCII
// letters, digits and _, plus the symbols in extra, not starting with a
// symbol. The fuzz targets hold the regular expressions to it.
func refName(name string, max int, extra string) bool {
	if name == "" || len(name) > max {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' {
			continue
		}
		if i == 0 || c >= utf8.RuneSelf || !strings.ContainsRune(extra, rune(c)) {
			return false
		}
	}
	return true
}

// FuzzValidateName: task and queue names are accepted exactly when the
// written rule accepts them, the answer does not change once the name is
// cached, and a refusal is a ValidationError matching ErrInvalid.
func FuzzValidateName(f *testing.F) {
	f.Add("emails.send")
	f.Add("")
	f.Add(strings.Repeat("a", 201))
	f.Fuzz(func(t *testing.T, name string) {
		for _, c := range []struct {
			kind, field string
			validate    func(string) error
			want        bool
		}{
			{"task", "task", ValidateTaskName, refName(name, 200, ".:/-")},
			{"queue", "Queue", ValidateQueueName, refName(name, 100, ".:-")},
		} {
			for range 2 { // the second call may answer from the cache
				err := c.validate(name)
				if (err == nil) != c.want {
					t.Fatalf("%s name %q: got error %v, the rule says valid=%v", c.kind, name, err, c.want)
				}
				if err == nil {
					continue
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s name %q: error %v does not match ErrInvalid", c.kind, name, err)
				}
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != c.field {
					t.Fatalf("%s name %q: error %v does not name the field %s", c.kind, name, err, c.field)
				}
			}
		}
	})
}

// FuzzPrepareRaw: preparing a queue.Raw job from any args bytes and options
// either fails with an error matching ErrInvalid, or yields a job that the
// database can store: valid names, args that are the
// same JSON value as given (an empty object for none), a JSON object for
// the headers, and args plus headers within the size limit.
func FuzzPrepareRaw(f *testing.F) {
	f.Add("emails.send", []byte(`{"to":"ada@example.com"}`), "", 0, int64(0), int64(0), 3, "", "", 0)
	f.Fuzz(func(t *testing.T, task string, args []byte, queueName string, priority int, countdown, eta int64, retries int, uniqueKey, header string, maxPayload int) {
		r, err := newRouter([]Route{{Pattern: "routed.*", Options: Options{Queue: "routed", Priority: Ptr(3)}}})
		if err != nil {
			t.Fatal(err)
		}
		limit := MaxPayloadBytesDefault
		if maxPayload > 0 {
			limit = min(maxPayload, MaxPayloadBytesDefault)
		}
		c := &Client{schema: "pgq", router: r, maxPayload: limit}
		opts := &Options{
			Queue:      queueName,
			Priority:   &priority,
			Countdown:  time.Duration(countdown),
			MaxRetries: &retries,
			UniqueKey:  uniqueKey,
		}
		if eta != 0 {
			opts.ETA = time.Unix(0, eta)
		}
		if header != "" {
			opts.Headers = map[string]any{"h": header}
		}
		now := time.Now()
		p, err := c.prepare(Raw{Task: task, Args: args}, opts, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("error %v is not a ValidationError naming a field", err)
			}
			return
		}
		if p.task != task || ValidateTaskName(p.task) != nil || ValidateQueueName(p.queue) != nil {
			t.Fatalf("accepted bad names: task %q queue %q", p.task, p.queue)
		}
		if size := len(p.args) + len(p.meta); size > limit {
			t.Fatalf("payload of %d bytes passed the limit of %d", size, limit)
		}
		// PostgreSQL's jsonb takes only valid UTF-8 without NUL characters.
		for what, b := range map[string][]byte{"args": p.args, "meta": p.meta} {
			if !json.Valid(b) || !utf8.Valid(b) {
				t.Fatalf("%s %q are not valid JSON in UTF-8", what, b)
			}
			if hasNUL(t, b) {
				t.Fatalf("%s %q hold a NUL character, which jsonb refuses", what, b)
			}
			if hasLoneSurrogate(b) {
				t.Fatalf("%s %q hold an unpaired surrogate, which jsonb refuses", what, b)
			}
		}
		if m := decode(t, p.meta); reflect.TypeOf(m) != reflect.TypeFor[map[string]any]() {
			t.Fatalf("meta %s is not a JSON object", p.meta)
		}
		want := any(map[string]any{})
		if trimmed := bytes.TrimSpace(args); len(trimmed) > 0 && string(trimmed) != "null" {
			want = decode(t, args)
		}
		if got := decode(t, p.args); !reflect.DeepEqual(got, want) {
			t.Fatalf("args %q were stored as %q", args, p.args)
		}
		if scheduled := countdown > 0 || opts.ETA.After(now); scheduled != (p.state == "scheduled") {
			t.Fatalf("state %s for countdown %d and eta %v", p.state, countdown, opts.ETA)
		}
	})
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// hasNUL reports whether a JSON text holds U+0000 in a string or a key.
func hasNUL(t *testing.T, b []byte) bool {
	t.Helper()
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.ContainsRune(v, 0)
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for k, e := range v {
				if strings.ContainsRune(k, 0) || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return bytes.Contains(b, []byte(`\u0000`)) && walk(decode(t, b))
}

var escape = regexp.MustCompile(`\\(u[0-9a-fA-F]{4}|.)`)

// hasLoneSurrogate reports whether a JSON text has a \u escape of a UTF-16
// surrogate that is not half of a high-low pair written next to each other.
func hasLoneSurrogate(b []byte) bool {
	var pendingHigh = -1 // end of the last high surrogate escape
	for _, m := range escape.FindAllSubmatchIndex(b, -1) {
		r := rune(-1)
		if b[m[2]] == 'u' {
			v, _ := strconv.ParseUint(string(b[m[2]+1:m[3]]), 16, 16)
			r = rune(v)
		}
		if pendingHigh >= 0 {
			if m[0] != pendingHigh || r < 0xdc00 || r > 0xdfff {
				return true
			}
			pendingHigh = -1
			continue
		}
		switch {
		case 0xd800 <= r && r <= 0xdbff:
			pendingHigh = m[1]
		case 0xdc00 <= r && r <= 0xdfff:
			return true
		}
	}
	return pendingHigh >= 0
}

// TestRawRefusesWhatJSONBRefuses: args and headers that encoding/json
// takes but PostgreSQL's jsonb refuses are an ErrInvalid before anything
// is sent, not a database error that aborts the caller's transaction.
// Found by FuzzPrepareRaw.
func TestRawRefusesWhatJSONBRefuses(t *testing.T) {
	t.Parallel()
	c := &Client{schema: "pgq", router: &router{exact: map[string]Options{}}, maxPayload: MaxPayloadBytesDefault}
	for _, args := range []string{"{\"a\":\"\xff\"}", `{"a":"x\u0000y"}`, `{"\u0000":1}`, `{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud800\ud800"}`, `["\ud800x"]`} {
		_, err := c.prepare(Raw{Task: "a.b", Args: json.RawMessage(args)}, nil, time.Now())
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("args %q: got %v, want ErrInvalid", args, err)
		}
	}
	for _, args := range []string{`{"a":"\\u0000"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\u00e9\n\\"}`, "{\"a\":\"\u00e9\"}"} {
		if _, err := c.prepare(Raw{Task: "a.b", Args: json.RawMessage(args)}, nil, time.Now()); err != nil {
			t.Errorf("args %q: %v", args, err)
		}
	}
	_, err := c.prepare(Raw{Task: "a.b"}, &Options{Headers: map[string]any{"h": "x\x00y"}}, time.Now())
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "Headers" {
		t.Errorf("header with NUL: got %v, want a ValidationError on Headers", err)
	}
}
