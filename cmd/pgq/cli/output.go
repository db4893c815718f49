package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pgq/pgq/queue"
)

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// queueRow is one queue of `pgq inspect queues`: a count for every state,
// zeros included, so the JSON has the same keys whatever the data.
type queueRow struct {
	Queue  string           `json:"queue"`
	States map[string]int64 `json:"states"`
	Total  int64            `json:"total"`
}

type queuesJSON struct {
	Queues []queueRow `json:"queues"`
}

// queueRows pivots (queue, state, count) rows into one row per queue, in
// the order QueueStats returns them (by queue name).
func queueRows(stats []queue.QueueStat) []queueRow {
	rows := []queueRow{}
	index := map[string]int{}
	for _, st := range stats {
		i, ok := index[st.Queue]
		if !ok {
			i = len(rows)
			index[st.Queue] = i
			r := queueRow{Queue: st.Queue, States: make(map[string]int64, len(queue.States))}
			for _, s := range queue.States {
				r.States[s] = 0
			}
			rows = append(rows, r)
		}
		rows[i].States[st.State] += st.Count
		rows[i].Total += st.Count
	}
	return rows
}

func writeQueues(w io.Writer, rows []queueRow) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no jobs yet")
		return err
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "QUEUE\t%s\tTOTAL\n", strings.ToUpper(strings.Join(queue.States, "\t")))
	for _, r := range rows {
		fmt.Fprint(tw, r.Queue)
		for _, s := range queue.States {
			fmt.Fprintf(tw, "\t%d", r.States[s])
		}
		fmt.Fprintf(tw, "\t%d\n", r.Total)
	}
	return tw.Flush()
}

type jobsJSON struct {
	Jobs []queue.JobSummary `json:"jobs"`
	// NextBefore is the --before value of the next page; 0 (omitted) when
	// this page was not full.
	NextBefore int64 `json:"next_before,omitempty"`
}

func writeJobs(w io.Writer, page jobsJSON) error {
	if len(page.Jobs) == 0 {
		_, err := fmt.Fprintln(w, "no jobs")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tTASK\tQUEUE\tSTATE\tPRIORITY\tATTEMPTS\tRUN AT\tCREATED\tLAST ERROR")
	for _, j := range page.Jobs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\t%s\n",
			j.ID, j.Task, j.Queue, j.State, j.Priority, j.Attempt, j.MaxRetries+1,
			formatTime(j.RunAt), formatTime(j.CreatedAt), oneLine(j.LastError, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextBefore != 0 {
		_, err := fmt.Fprintf(w, "more: --before %d\n", page.NextBefore)
		return err
	}
	return nil
}

// writeJob prints every field of a job, one per line, then its errors with
// their stacks.
func writeJob(w io.Writer, j *queue.Job) error {
	tw := newTable(w)
	field := func(name string, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", name, fmt.Sprintf(format, args...))
	}
	field("id", "%d", j.ID)
	field("task", "%s", j.Task)
	field("queue", "%s", j.Queue)
	field("state", "%s", j.State)
	field("priority", "%d", j.Priority)
	field("attempt", "%d of %d (max retries %d)", j.Attempt, j.MaxRetries+1, j.MaxRetries)
	field("args", "%s", compactJSON(j.Args))
	field("headers", "%s", compactJSON(j.Headers))
	field("retry delay", "%s", durationOr(j.RetryDelay, "worker's backoff"))
	field("time limit", "%s", durationOr(j.TimeLimit, "none"))
	field("soft time limit", "%s", durationOr(j.SoftTimeLimit, "none"))
	field("ignore result", "%t", j.IgnoreResult)
	field("unique key", "%s", or(j.UniqueKey, "-"))
	field("run at", "%s", formatTime(j.RunAt))
	field("expires at", "%s", formatTimePtr(j.ExpiresAt))
	field("created at", "%s", formatTime(j.CreatedAt))
	field("started at", "%s", formatTimePtr(j.StartedAt))
	field("finished at", "%s", formatTimePtr(j.FinishedAt))
	field("worker", "%s", or(j.WorkerID, "-"))
	field("result", "%s", or(compactJSON(j.Result), "-"))
	if j.ParentID != nil {
		field("parent", "%d", *j.ParentID)
	}
	if j.RootID != nil {
		field("root", "%d", *j.RootID)
	}
	field("errors", "%d", len(j.Errors))
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range j.Errors {
		fmt.Fprintf(w, "\nattempt %d at %s:\n  %s\n", e.Attempt, formatTime(e.At), indent(e.Error, "  "))
		if e.Stack != "" {
			fmt.Fprintf(w, "  stack:\n    %s\n", indent(strings.TrimRight(e.Stack, "\n"), "    "))
		}
	}
	return nil
}

// timeLayout is how tables print times: local time, to the second.
const timeLayout = "2006-01-02 15:04:05 MST"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeLayout)
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}

func durationOr(d time.Duration, none string) string {
	if d == 0 {
		return none
	}
	return d.String()
}

func or(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// oneLine flattens s to one line of at most n runes, for table cells.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func indent(s, prefix string) string {
	return strings.ReplaceAll(s, "\n", "\n"+prefix)
}
