package queue

import (
	"encoding/json"
	"errors"
)

// TaskArgs is the arguments of one task, and names that task. Any struct
// that can be encoded as JSON becomes a task by adding one method:
//
//	type SendEmail struct {
//		To      string `json:"to"`
//		Subject string `json:"subject"`
//	}
//
//	func (SendEmail) TaskName() string { return "emails.send" }
//
// The same type is what the worker's handler receives, decoded from the
// job's args, so producer and consumer agree on the shape at compile time.
type TaskArgs interface {
	TaskName() string
}

// TaskOptioner is implemented by args types that carry defaults for their
// task (Celery's task-level settings). They apply after the route table and
// before the options given at the call; see Options.
type TaskOptioner interface {
	TaskOptions() Options
}

// Raw is a task given by name with args already encoded as JSON, for
// callers that do not have a Go type for it (a CLI, a bridge, a test).
//
//	client.Enqueue(ctx, queue.Raw{Task: "reports.build", Args: json.RawMessage(`{"month":"2026-11"}`)}, nil)
//
// Nil Args mean an empty object.
type Raw struct {
	Task string
	Args json.RawMessage
}

// TaskName returns r.Task.
func (r Raw) TaskName() string { return r.Task }

// MarshalJSON returns r.Args, or {} when it is empty. It refuses args that
// PostgreSQL cannot store as jsonb although they parse as JSON: invalid
// UTF-8, \u0000, unpaired surrogates.
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r.Args) == 0 {
		return []byte("{}"), nil
	}
	if why := jsonbRefusal(r.Args); why != "" {
		return nil, errors.New("args " + why)
	}
	return r.Args, nil
}
