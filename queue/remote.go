package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// Remote control commands (Celery's control/inspect), sent to workers on
// the schema's control channel. See docs/control.md.
const (
	// ControlPing asks every worker for a reply with its state (PingReply).
	ControlPing = "ping"
	// ControlRevoke cancels running jobs (RevokeArgs); Revoke sends it.
	ControlRevoke = "revoke"
	// ControlPoolSize sets the number of jobs a worker runs at once
	// (PoolSizeArgs).
	ControlPoolSize = "pool-size"
	// ControlAddQueue makes a worker take jobs from one more queue
	// (QueueArgs).
	ControlAddQueue = "add-queue"
	// ControlDropQueue makes a worker stop taking jobs from a queue
	// (QueueArgs); its running jobs of that queue finish.
	ControlDropQueue = "drop-queue"
	// ControlShutdown makes a worker shut down gracefully, as on SIGTERM.
	ControlShutdown = "shutdown"
	// ControlLimits makes a worker re-read pgq.limits now (no args);
	// SetLimit and DeleteLimit send it.
	ControlLimits = "limits"
)

// ControlTimeoutDefault is how long Control waits for replies.
const ControlTimeoutDefault = time.Second

// ControlMessage is the JSON payload of a notification on the control
// channel ("<schema>.control").
type ControlMessage struct {
	// ID identifies the message; replies carry it.
	ID string `json:"id"`
	// Command is one of the Control... constants.
	Command string `json:"command"`
	// Args are the command's arguments, a JSON object.
	Args json.RawMessage `json:"args,omitempty"`
	// ReplyTo is the channel replies go to, "<schema>.control_reply";
	// empty means no reply is wanted.
	ReplyTo string `json:"reply_to,omitempty"`
	// Workers are the ids of the workers the message is for; empty means
	// every worker of the schema.
	Workers []string `json:"workers,omitempty"`
}

// ControlReply is a worker's answer to a control message, sent on the
// reply channel.
type ControlReply struct {
	// ID is the id of the message answered.
	ID       string `json:"id"`
	WorkerID string `json:"worker_id"`
	// OK is false when the worker could not do what was asked; Error says
	// why.
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// RevokeArgs are the args of ControlRevoke.
type RevokeArgs struct {
	JobIDs []int64 `json:"job_ids"`
}

// PoolSizeArgs are the args of ControlPoolSize: either Concurrency (a
// fixed number, which turns autoscaling off) or Min and Max (autoscale
// between them).
type PoolSizeArgs struct {
	Concurrency int `json:"concurrency,omitempty"`
	Min         int `json:"min,omitempty"`
	Max         int `json:"max,omitempty"`
}

// QueueArgs are the args of ControlAddQueue and ControlDropQueue.
type QueueArgs struct {
	Queue string `json:"queue"`
}

// PingReply is the Data of a worker's reply to ControlPing, and of its
// replies to the commands that change it (its state afterwards).
type PingReply struct {
	WorkerID     string   `json:"worker_id"`
	Host         string   `json:"host"`
	PID          int      `json:"pid"`
	Queues       []string `json:"queues"`
	Concurrency  int      `json:"concurrency"`
	AutoscaleMin int      `json:"autoscale_min,omitempty"`
	AutoscaleMax int      `json:"autoscale_max,omitempty"`
	Active       int      `json:"active"`
	// ActiveJobs are the ids of the jobs it runs (at most 200).
	ActiveJobs   []int64 `json:"active_jobs"`
	UptimeSecond float64 `json:"uptime_seconds"`
	ShuttingDown bool    `json:"shutting_down,omitempty"`
}

// ControlOptions narrow and bound a control call. A nil *ControlOptions
// means every worker and ControlTimeoutDefault.
type ControlOptions struct {
	// Workers are the worker ids to address; empty means every worker.
	Workers []string
	// Timeout is how long to wait for replies; 0 means
	// ControlTimeoutDefault.
	Timeout time.Duration
}

// ControlResult collects the replies to a control message.
type ControlResult struct {
	// Replies are the replies that came in time, in arrival order.
	Replies []ControlReply
	// Missing are the workers that were expected to reply (those named in
	// ControlOptions.Workers, else those registered in pgq.workers) and
	// did not within the timeout: gone, stuck, or not listening.
	Missing []string
}

// Control sends a command to the workers of the schema and collects their
// replies until every expected worker has replied or the timeout passes.
// It uses a connection of its own to listen for the replies, opened
// before the message is sent. args may be nil.
//
// The workers expected to reply are those named in opts, or else every
// worker in pgq.workers; those that do not reply in time are listed in
// ControlResult.Missing, never as an error. Delivery is at most once:
// a worker whose LISTEN connection is down misses the message.
func (c *Client) Control(ctx context.Context, command string, args any, opts *ControlOptions) (*ControlResult, error) {
	var o ControlOptions
	if opts != nil {
		o = *opts
	}
	if o.Timeout < 0 {
		return nil, errors.New("ControlOptions.Timeout cannot be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = ControlTimeoutDefault
	}
	expected := o.Workers
	if len(expected) == 0 {
		ws, err := c.Workers(ctx)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			expected = append(expected, w.ID)
		}
	}
	replyTo := schema.Channel(c.schema, "control_reply")
	payload, err := newControlMessage(command, args, o.Workers, replyTo)
	if err != nil {
		return nil, err
	}
	var msg ControlMessage
	_ = json.Unmarshal([]byte(payload), &msg)

	conn, err := pgx.ConnectConfig(ctx, c.sessionConfig())
	if err != nil {
		return nil, fmt.Errorf("control %s: connect to listen for replies: %w", command, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	q := db.New(schema.Wrap(c.schema, conn))
	if err := q.ListenControlReplies(ctx); err != nil {
		return nil, dbError(c.schema, fmt.Sprintf("control %s: listen for replies", command), err)
	}
	if err := q.NotifyControl(ctx, payload); err != nil {
		return nil, dbError(c.schema, fmt.Sprintf("control %s: send", command), err)
	}

	res := &ControlResult{}
	replied := map[string]bool{}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for len(expected) == 0 || !allIn(expected, replied) {
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if wctx.Err() != nil {
				break // the timeout: whoever has not replied is missing
			}
			return nil, fmt.Errorf("control %s: wait for replies: %w", command, err)
		}
		var r ControlReply
		if json.Unmarshal([]byte(n.Payload), &r) != nil || r.ID != msg.ID || replied[r.WorkerID] {
			continue
		}
		replied[r.WorkerID] = true
		res.Replies = append(res.Replies, r)
	}
	for _, w := range expected {
		if !replied[w] {
			res.Missing = append(res.Missing, w)
		}
	}
	return res, nil
}

func allIn(ids []string, set map[string]bool) bool {
	return !slices.ContainsFunc(ids, func(id string) bool { return !set[id] })
}

// Ping asks the workers for their state (queues, concurrency, running
// jobs); each reply's Data is a PingReply.
func (c *Client) Ping(ctx context.Context, opts *ControlOptions) (*ControlResult, error) {
	return c.Control(ctx, ControlPing, nil, opts)
}

// newControlMessage encodes a control message with a fresh id.
func newControlMessage(command string, args any, workers []string, replyTo string) (string, error) {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	m := ControlMessage{ID: hex.EncodeToString(id), Command: command, Workers: workers, ReplyTo: replyTo}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return "", fmt.Errorf("control %s: encode args: %w", command, err)
		}
		m.Args = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("control %s: encode message: %w", command, err)
	}
	if len(b) > 7900 {
		return "", fmt.Errorf("control %s: message of %d bytes is over PostgreSQL's 8000-byte NOTIFY limit; address fewer workers", command, len(b))
	}
	return string(b), nil
}
