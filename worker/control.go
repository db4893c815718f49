package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// controlBacklog is how many control messages may wait for the
// controller; more are dropped with a warning (control traffic is a
// person at a terminal, not a stream).
const controlBacklog = 64

// pingActiveMax caps the job ids a ping reply lists, so that a reply stays
// under PostgreSQL's 8000-byte NOTIFY payload limit.
const pingActiveMax = 200

// controlMaxConcurrency bounds the pool-size a control message may set.
const controlMaxConcurrency = 10000

// controller runs the control messages the notifier receives on
// "<schema>.control" (see docs/control.md): revoke, ping, pool-size,
// add-queue, drop-queue and shutdown. It runs them one at a time, in its
// own goroutine, so that the notifier never waits on a reply being sent.
// A malformed message is logged and ignored.
type controller struct {
	service
	w  *Worker
	in chan string
}

func newController(w *Worker) *controller {
	return &controller{w: w, in: make(chan string, controlBacklog)}
}

// Start starts the loop.
func (c *controller) Start(ctx context.Context) { c.start(ctx, c.run) }

// Stop stops the loop and waits for it; messages not yet run are dropped.
func (c *controller) Stop() { c.stop() }

// deliver queues a message's payload without blocking.
func (c *controller) deliver(payload string) {
	select {
	case c.in <- payload:
	default:
		c.w.log.Warn("control message dropped: too many waiting", "backlog", controlBacklog)
	}
}

func (c *controller) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-c.in:
			c.handle(ctx, p)
		}
	}
}

// handle runs one message and sends its reply when one is asked for.
func (c *controller) handle(ctx context.Context, payload string) {
	w := c.w
	var m queue.ControlMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.Command == "" {
		if err == nil {
			err = errors.New("no command")
		}
		w.log.Warn("malformed control message ignored", "error", err, "payload", truncate(payload, 200))
		return
	}
	if len(m.Workers) > 0 && !slices.Contains(m.Workers, w.cfg.WorkerID) {
		return
	}
	data, err := c.run1(ctx, m)
	if err != nil {
		w.log.Warn("control command failed", "command", m.Command, "control_id", m.ID, "error", err)
	} else if m.Command != queue.ControlPing {
		w.log.Info("control command done", "command", m.Command, "control_id", m.ID)
	}
	if m.ReplyTo == "" {
		return
	}
	if want := schema.Channel(w.cfg.Schema, "control_reply"); m.ReplyTo != want {
		w.log.Warn("control message asks for replies on a foreign channel; not replying", "command", m.Command, "reply_to", truncate(m.ReplyTo, 100), "expected", want)
		return
	}
	r := queue.ControlReply{ID: m.ID, WorkerID: w.cfg.WorkerID, OK: err == nil}
	if err != nil {
		r.Error = err.Error()
	}
	if data != nil {
		r.Data, _ = json.Marshal(data)
	}
	b, _ := json.Marshal(r)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.q.NotifyControlReply(rctx, string(b)); err != nil {
		w.log.Warn("control reply not sent", "command", m.Command, "control_id", m.ID, "error", err)
	}
	if m.Command == queue.ControlShutdown && err == nil {
		w.requestStop() // after the reply: the shutdown stops this loop
	}
}

// run1 runs one command and returns the reply's data.
func (c *controller) run1(ctx context.Context, m queue.ControlMessage) (any, error) {
	w := c.w
	switch m.Command {
	case queue.ControlPing:
		return w.pingReply(), nil
	case queue.ControlRevoke:
		var a queue.RevokeArgs
		if err := decodeArgs(m, &a); err != nil {
			return nil, err
		}
		var held []int64
		for _, id := range a.JobIDs {
			if w.revokeJob(id) {
				held = append(held, id)
			}
		}
		return map[string][]int64{"revoked": held}, nil
	case queue.ControlPoolSize:
		var a queue.PoolSizeArgs
		if err := decodeArgs(m, &a); err != nil {
			return nil, err
		}
		if err := w.setPoolSize(a); err != nil {
			return nil, err
		}
		return w.pingReply(), w.saveSettings(ctx)
	case queue.ControlAddQueue, queue.ControlDropQueue:
		var a queue.QueueArgs
		if err := decodeArgs(m, &a); err != nil {
			return nil, err
		}
		if err := w.changeQueue(a.Queue, m.Command == queue.ControlAddQueue); err != nil {
			return nil, err
		}
		return w.pingReply(), w.saveSettings(ctx)
	case queue.ControlShutdown:
		return w.pingReply(), nil
	case queue.ControlLimits:
		w.fetcher.refreshLimits()
		return w.pingReply(), nil
	}
	return nil, fmt.Errorf("unknown control command %q: this worker knows %s, %s, %s, %s, %s, %s and %s", m.Command,
		queue.ControlPing, queue.ControlRevoke, queue.ControlPoolSize, queue.ControlAddQueue, queue.ControlDropQueue, queue.ControlShutdown, queue.ControlLimits)
}

func decodeArgs(m queue.ControlMessage, v any) error {
	if len(m.Args) == 0 {
		return fmt.Errorf("%s: args are missing", m.Command)
	}
	if err := json.Unmarshal(m.Args, v); err != nil {
		return fmt.Errorf("%s: cannot decode args: %w", m.Command, err)
	}
	return nil
}

// pingReply describes the worker now.
func (w *Worker) pingReply() queue.PingReply {
	host, _ := os.Hostname()
	ids, n := w.heldIDs(pingActiveMax)
	r := queue.PingReply{
		WorkerID: w.cfg.WorkerID, Host: host, PID: os.Getpid(), Queues: w.Queues(),
		Concurrency: w.Concurrency(), Active: n, ActiveJobs: ids,
		UptimeSecond: time.Since(w.startedAt).Seconds(),
	}
	if a := w.scale.Load(); a != nil {
		r.AutoscaleMin, r.AutoscaleMax = a.Min, a.Max
	}
	select {
	case <-w.stopRequested:
		r.ShuttingDown = true
	default:
	}
	return r
}

// setPoolSize applies a pool-size message: a fixed concurrency (which
// ends autoscaling) or a new autoscale range.
func (w *Worker) setPoolSize(a queue.PoolSizeArgs) error {
	switch {
	case a.Concurrency != 0 && (a.Min != 0 || a.Max != 0):
		return errors.New("pool-size: give concurrency, or min and max, not both")
	case a.Concurrency != 0:
		if a.Concurrency < 1 || a.Concurrency > controlMaxConcurrency {
			return fmt.Errorf("pool-size: concurrency must be between 1 and %d (got %d)", controlMaxConcurrency, a.Concurrency)
		}
		was := w.Concurrency()
		w.scale.Store(nil)
		w.limit.Store(int64(a.Concurrency))
		w.ceiling.Store(int64(a.Concurrency))
		w.log.Info("pool size changed by a control message", "concurrency", a.Concurrency, "was", was)
	default:
		if a.Min < 1 || a.Max < a.Min || a.Max > controlMaxConcurrency {
			return fmt.Errorf("pool-size: need 1 <= min <= max <= %d (got min %d, max %d)", controlMaxConcurrency, a.Min, a.Max)
		}
		idle := AutoscaleIdleAfterDefault
		if old := w.scale.Load(); old != nil {
			idle = old.IdleAfter
		}
		w.scale.Store(&Autoscale{Min: a.Min, Max: a.Max, IdleAfter: idle})
		limit := min(max(w.Concurrency(), a.Min), a.Max)
		w.limit.Store(int64(limit))
		w.ceiling.Store(int64(a.Max))
		w.log.Info("autoscale range changed by a control message", "autoscale_min", a.Min, "autoscale_max", a.Max, "concurrency", limit)
	}
	w.fetcher.wake() // more slots may be free now
	return nil
}

// changeQueue adds or drops a queue the worker claims from.
func (w *Worker) changeQueue(name string, add bool) error {
	if err := queue.ValidateQueueName(name); err != nil {
		return err
	}
	cur := w.queues.Load()
	switch {
	case add && cur.has[name]:
		return nil
	case add:
		w.queues.Store(newQueueSet(append(slices.Clone(cur.list), name)))
		w.log.Info("queue added by a control message", "queue", name)
		w.fetcher.wake()
	case !cur.has[name]:
		return fmt.Errorf("drop-queue: this worker does not take jobs from queue %q (it takes %q)", name, cur.list)
	case len(cur.list) == 1:
		return fmt.Errorf("drop-queue: %q is this worker's only queue; add another first, or shut the worker down", name)
	default:
		w.queues.Store(newQueueSet(slices.DeleteFunc(slices.Clone(cur.list), func(q string) bool { return q == name })))
		w.log.Info("queue dropped by a control message; its running jobs finish", "queue", name)
	}
	return nil
}

// saveSettings writes the worker's queues and concurrency to its row.
func (w *Worker) saveSettings(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := w.q.UpdateWorkerSettings(ctx, db.UpdateWorkerSettingsParams{
		ID: w.cfg.WorkerID, Queues: w.Queues(), Concurrency: int32(w.ceiling.Load()),
	})
	if err != nil {
		return fmt.Errorf("changed, but pgq.workers not updated (the next heartbeat re-registration will): %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
