package periodic

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgq/pgq/queue"
)

// MissedTicks says what becomes of ticks that passed while no beat was
// leading (every beat process was down, or a failover was under way).
type MissedTicks string

const (
	// RunOnce, the default, enqueues one job for the latest missed tick
	// and none for the earlier ones (Celery beat's behaviour).
	RunOnce MissedTicks = "run-once"
	// Skip enqueues nothing for missed ticks: the next job is the next
	// tick's. A tick reached within Config.Grace of its time is on time,
	// not missed.
	Skip MissedTicks = "skip"
)

// Source says who defined a periodic task.
type Source string

const (
	// SourceCode: Config.Entries of a program running beat.
	SourceCode Source = "code"
	// SourceCLI: `pgq periodic add` or Client.Add.
	SourceCLI Source = "cli"
	// SourceSQL: a row inserted into pgq.periodic_tasks by hand.
	SourceSQL Source = "sql"
)

// Entry is a periodic task defined in Go.
//
//	periodic.Entry{
//		Name:     "reports.nightly",
//		Schedule: "30 2 * * *",
//		TimeZone: "Europe/Berlin",
//		Args:     BuildReport{Kind: "daily"},
//	}
type Entry struct {
	// Name identifies the task in the table, the logs and the CLI.
	Name string
	// Schedule is a cron spec, a descriptor or an interval; see Parse.
	// periodic.Every(30*time.Second) writes an interval.
	Schedule string
	// TimeZone is the IANA zone the cron fields are read in; "" means UTC.
	TimeZone string
	// Args are the job's arguments and name its task: a queue.TaskArgs
	// type, or queue.Raw{Task: "...", Args: json.RawMessage(...)}.
	Args queue.TaskArgs
	// Options of each job. Fields left unset come from the args type's
	// TaskOptions (Queue, Priority, MaxRetries) and then from the beat's
	// routes and pgq's defaults.
	Options Options
	// Missed is the policy for ticks missed while no beat led; "" means
	// RunOnce.
	Missed MissedTicks
}

// Options are the job options a periodic task stores with its schedule.
type Options struct {
	// Queue the jobs go to.
	Queue string
	// Priority from 0 (lowest) to 9 (highest).
	Priority *int
	// MaxRetries is how many times a failed job is tried again.
	MaxRetries *int
	// Expires discards a job that has not started this long after it was
	// enqueued. 0 means "at the next tick", so that a backlog of one
	// periodic task never piles up behind slow or stopped workers.
	Expires time.Duration
}

// normalized is an Entry checked and encoded for the table.
type normalized struct {
	name, spec, zone, task string
	args                   json.RawMessage
	queue                  *string
	priority               *int16
	maxRetries             *int32
	expires                *float64
	missed                 MissedTicks
}

// normalize checks e and encodes it. Errors name the entry and the field.
func (e Entry) normalize() (normalized, error) {
	n, err := e.check()
	var v *ValidationError
	if errors.As(err, &v) && v.Entry == "" {
		v.Entry = e.Name
	}
	return n, err
}

func (e Entry) check() (normalized, error) {
	if e.Name == "" {
		return normalized{}, &ValidationError{Field: "Name", Reason: "name is empty"}
	}
	if len(e.Name) > 200 {
		return normalized{}, &ValidationError{Field: "Name", Reason: "name is longer than 200 bytes"}
	}
	s, err := Parse(e.Schedule, e.TimeZone)
	if err != nil {
		return normalized{}, err
	}
	if e.Args == nil {
		return normalized{}, &ValidationError{Field: "Args", Reason: "args are nil: pass a queue.TaskArgs value or queue.Raw"}
	}
	task := e.Args.TaskName()
	if err := queue.ValidateTaskName(task); err != nil {
		return normalized{}, &ValidationError{Field: "Args", Reason: "task name: " + reason(err)}
	}
	args, err := json.Marshal(e.Args)
	if err != nil {
		return normalized{}, &ValidationError{Field: "Args", Reason: fmt.Sprintf("cannot encode args of task %s as JSON: %v", task, err)}
	}
	if string(args) == "null" {
		args = []byte("{}")
	}
	o := e.Options
	if t, ok := e.Args.(queue.TaskOptioner); ok {
		td := t.TaskOptions()
		if o.Queue == "" {
			o.Queue = td.Queue
		}
		if o.Priority == nil {
			o.Priority = td.Priority
		}
		if o.MaxRetries == nil {
			o.MaxRetries = td.MaxRetries
		}
	}
	n := normalized{name: e.Name, spec: s.String(), zone: s.TimeZone(), task: task, args: args, missed: e.Missed}
	if n.missed == "" {
		n.missed = RunOnce
	}
	if n.missed != RunOnce && n.missed != Skip {
		return normalized{}, &ValidationError{Field: "Missed", Reason: fmt.Sprintf("unknown policy %q: use %q or %q", e.Missed, RunOnce, Skip)}
	}
	if o.Queue != "" {
		if err := queue.ValidateQueueName(o.Queue); err != nil {
			return normalized{}, &ValidationError{Field: "Options.Queue", Reason: reason(err)}
		}
		n.queue = &o.Queue
	}
	if o.Priority != nil {
		if *o.Priority < 0 || *o.Priority > queue.PriorityMax {
			return normalized{}, &ValidationError{Field: "Options.Priority", Reason: fmt.Sprintf("priority %d is out of range: use 0 (lowest) to %d (highest)", *o.Priority, queue.PriorityMax)}
		}
		p := int16(*o.Priority)
		n.priority = &p
	}
	if o.MaxRetries != nil {
		if *o.MaxRetries < 0 || *o.MaxRetries > 1<<30 {
			return normalized{}, &ValidationError{Field: "Options.MaxRetries", Reason: fmt.Sprintf("max retries %d is out of range", *o.MaxRetries)}
		}
		m := int32(*o.MaxRetries)
		n.maxRetries = &m
	}
	if o.Expires < 0 {
		return normalized{}, &ValidationError{Field: "Options.Expires", Reason: "expires cannot be negative (0 means at the next tick)"}
	}
	if o.Expires > 0 {
		sec := o.Expires.Seconds()
		n.expires = &sec
	}
	return n, nil
}
