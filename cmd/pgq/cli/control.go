package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

// controlFlags are the flags every `pgq control` command takes.
type controlFlags struct {
	timeout time.Duration
	workers []string
	asJSON  bool
}

func newControlCmd(a *app) *cobra.Command {
	cmd := groupCmd("control", "Send commands to running workers (ping, shutdown, pool size, queues)",
		`  pgq control ping
  pgq control pool-size 20 --worker web-1-4242-a1b2c3
  pgq control pool-size --min 2 --max 50
  pgq control add-queue reports
  pgq control drop-queue reports --worker web-1-4242-a1b2c3
  pgq control shutdown --worker web-1-4242-a1b2c3`)
	cmd.Long = `Send a command to the workers of the schema through PostgreSQL (NOTIFY on
<schema>.control) and print their replies (NOTIFY on <schema>.control_reply).
Every worker registered in pgq.workers, or each one named with --worker, is
expected to reply within --timeout; one that does not is reported as "no reply"
(it is gone, stuck, or runs with --no-listen) and the exit status is 1.`
	cmd.AddCommand(
		newControlSubCmd(a, "ping", "Ask workers for their state", noArgs, func([]string) (string, any, error) {
			return queue.ControlPing, nil, nil
		}),
		newControlSubCmd(a, "shutdown", "Shut workers down gracefully, as SIGTERM does", noArgs, func([]string) (string, any, error) {
			return queue.ControlShutdown, nil, nil
		}),
		newControlSubCmd(a, "add-queue QUEUE", "Make workers take jobs from one more queue", exactArgs("QUEUE"), func(args []string) (string, any, error) {
			return queue.ControlAddQueue, queue.QueueArgs{Queue: args[0]}, queue.ValidateQueueName(args[0])
		}),
		newControlSubCmd(a, "drop-queue QUEUE", "Make workers stop taking jobs from a queue; its running jobs finish", exactArgs("QUEUE"), func(args []string) (string, any, error) {
			return queue.ControlDropQueue, queue.QueueArgs{Queue: args[0]}, queue.ValidateQueueName(args[0])
		}),
		newPoolSizeCmd(a),
	)
	return cmd
}

func newPoolSizeCmd(a *app) *cobra.Command {
	var lo, hi int
	cmd := newControlSubCmd(a, "pool-size [N]", "Set how many jobs workers run at once (N), or their autoscale range (--min, --max)",
		func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf(cmd, "too many arguments: %q", args)
			}
			return nil
		},
		func(args []string) (string, any, error) {
			switch {
			case len(args) == 1 && (lo != 0 || hi != 0):
				return "", nil, fmt.Errorf("give N, or --min and --max, not both")
			case len(args) == 1:
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return "", nil, fmt.Errorf("N %q is not a positive whole number", args[0])
				}
				return queue.ControlPoolSize, queue.PoolSizeArgs{Concurrency: n}, nil
			case lo < 1 || hi < lo:
				return "", nil, fmt.Errorf("give N, or --min and --max with 1 <= min <= max")
			}
			return queue.ControlPoolSize, queue.PoolSizeArgs{Min: lo, Max: hi}, nil
		})
	cmd.Flags().IntVar(&lo, "min", 0, "autoscale: fewest jobs at once")
	cmd.Flags().IntVar(&hi, "max", 0, "autoscale: most jobs at once")
	return cmd
}

// newControlSubCmd makes one `pgq control` command: message builds the
// command and args from the positional arguments.
func newControlSubCmd(a *app, use, short string, argCheck cobra.PositionalArgs, message func([]string) (string, any, error)) *cobra.Command {
	var f controlFlags
	verb, _, _ := strings.Cut(use, " ")
	example := "  pgq control " + verb + " --timeout 2s\n  pgq control " + verb + " --worker web-1-4242-a1b2c3 --json"
	switch verb {
	case "add-queue", "drop-queue":
		example = "  pgq control " + verb + " reports\n  pgq control " + verb + " reports --worker web-1-4242-a1b2c3"
	case "pool-size":
		example = "  pgq control pool-size 20\n  pgq control pool-size --min 2 --max 50 --worker web-1-4242-a1b2c3"
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    argCheck,
		RunE: func(cmd *cobra.Command, args []string) error {
			command, cargs, err := message(args)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if f.timeout <= 0 {
				return usageErrorf(cmd, "--timeout must be positive")
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.client.Control(ctx, command, cargs, &queue.ControlOptions{Workers: f.workers, Timeout: f.timeout})
			if err != nil {
				return err
			}
			return printControl(cmd, command, res, f)
		},
	}
	cmd.Flags().DurationVar(&f.timeout, "timeout", queue.ControlTimeoutDefault, "how long to wait for replies")
	cmd.Flags().StringSliceVarP(&f.workers, "worker", "w", nil, "only this worker id (repeat or comma-separate for several; default every worker)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
	return cmd
}

type controlJSON struct {
	Command string               `json:"command"`
	Replies []queue.ControlReply `json:"replies"`
	Missing []string             `json:"no_reply"`
}

func printControl(cmd *cobra.Command, command string, res *queue.ControlResult, f controlFlags) error {
	failed := 0
	for _, r := range res.Replies {
		if !r.OK {
			failed++
		}
	}
	if f.asJSON {
		out := controlJSON{Command: command, Replies: res.Replies, Missing: res.Missing}
		if out.Replies == nil {
			out.Replies = []queue.ControlReply{}
		}
		if out.Missing == nil {
			out.Missing = []string{}
		}
		if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
			return err
		}
	} else {
		w := cmd.OutOrStdout()
		for _, r := range res.Replies {
			if !r.OK {
				fmt.Fprintf(w, "%s: error: %s\n", r.WorkerID, r.Error)
				continue
			}
			var p queue.PingReply
			if json.Unmarshal(r.Data, &p) == nil && p.WorkerID != "" {
				scale := ""
				if p.AutoscaleMax > 0 {
					scale = fmt.Sprintf(" (autoscale %d-%d)", p.AutoscaleMin, p.AutoscaleMax)
				}
				fmt.Fprintf(w, "%s: ok; host %s pid %d, queues %s, concurrency %d%s, running %d\n",
					r.WorkerID, p.Host, p.PID, strings.Join(p.Queues, ","), p.Concurrency, scale, p.Active)
				continue
			}
			fmt.Fprintf(w, "%s: ok %s\n", r.WorkerID, compactJSON(r.Data))
		}
		for _, id := range res.Missing {
			fmt.Fprintf(w, "%s: no reply within %s\n", id, f.timeout)
		}
	}
	switch {
	case len(res.Replies) == 0 && len(res.Missing) == 0:
		return fmt.Errorf("no workers are registered, and none replied within %s", f.timeout)
	case len(res.Missing) > 0 || failed > 0:
		return fmt.Errorf("%s: %d %s replied, %d failed, %d did not reply within %s", command,
			len(res.Replies), plural(int64(len(res.Replies)), "worker", "workers"), failed, len(res.Missing), f.timeout)
	}
	return nil
}
