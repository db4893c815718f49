package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pgq/pgq/internal/queuebench"
)

// environment describes where and with what a run took place.
type environment struct {
	started     time.Time
	took        time.Duration
	cpu         string
	cores       int
	memory      string
	kernel      string
	loadBefore  string
	loadAfter   string
	postgres    string
	serverKind  string
	settings    [][2]string
	goVersion   string
	pgqCommit   string
	river       string
	node        string
	nodeVersion map[string]string
	nodeErr     error
	cutShort    string // why the run ended before its plan did
}

// pgSettings are the server settings the report lists.
var pgSettings = []string{"fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers", "max_connections", "max_wal_size", "checkpoint_timeout", "work_mem", "autovacuum"}

func describe(ctx context.Context, s *server, n *nodeSetup, o *options) *environment {
	e := &environment{
		started:    time.Now().UTC(),
		cores:      runtime.NumCPU(),
		goVersion:  runtime.Version(),
		serverKind: s.kind,
		loadBefore: loadAverage(),
		cpu:        procField("/proc/cpuinfo", "model name"),
		memory:     procField("/proc/meminfo", "MemTotal"),
	}
	if out, err := exec.CommandContext(ctx, "uname", "-sr").Output(); err == nil {
		e.kernel = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.pgqCommit = strings.TrimSpace(string(out))
	}
	_ = s.admin.QueryRow(ctx, "SELECT version()").Scan(&e.postgres)
	for _, name := range pgSettings {
		var v string
		if err := s.admin.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err == nil {
			e.settings = append(e.settings, [2]string{name, v})
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/riverqueue/river" {
				e.river = d.Version
			}
		}
	}
	if n != nil {
		e.node, e.nodeVersion, e.nodeErr = n.version, n.versions, n.err
	}
	return e
}

func (e *environment) finish(started time.Time) {
	e.took = time.Since(started).Round(time.Second)
	e.loadAfter = loadAverage()
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// writeReport writes the run's Markdown: how it was run, where, and the
// table.
func writeReport(w io.Writer, e *environment, o *options, res *queuebench.Results) error {
	var b strings.Builder
	p := o.plan
	fmt.Fprintf(&b, "Run %s UTC, %s in all, with `%s`.\n\n", e.started.Format("2006-01-02 15:04"), e.took, commandLine(o))
	b.WriteString("| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| machine | %d cores (%s), %s, %s |\n", e.cores, e.cpu, e.memory, e.kernel)
	fmt.Fprintf(&b, "| load average (1, 5, 15 min) | %s before, %s after |\n", e.loadBefore, e.loadAfter)
	fmt.Fprintf(&b, "| PostgreSQL | %s (%s server) |\n", e.postgres, e.serverKind)
	var set []string
	for _, kv := range e.settings {
		set = append(set, "`"+kv[0]+"="+kv[1]+"`")
	}
	fmt.Fprintf(&b, "| settings | %s |\n", strings.Join(set, ", "))
	fmt.Fprintf(&b, "| Go | %s; pgq %s, River %s |\n", e.goVersion, orUnknown(e.pgqCommit), orUnknown(e.river))
	if e.nodeErr != nil {
		fmt.Fprintf(&b, "| Node.js | not run: %s |\n", e.nodeErr)
	} else if e.node != "" {
		fmt.Fprintf(&b, "| Node.js | %s; graphile-worker %s, pg-boss %s, pg %s |\n", e.node,
			e.nodeVersion["graphile-worker"], e.nodeVersion["pg-boss"], e.nodeVersion["pg"])
	}
	fmt.Fprintf(&b, "| sizes | %d rounds; drain %s jobs; steady %s jobs/s for %s with %d producers; ramp %s for %s each with %d producers; growth %s waiting, %s finished, %s timed; tx %s per variant, %d clients |\n\n",
		p.Rounds, queuebench.FormatNumber(float64(p.DrainJobs), 0),
		queuebench.FormatNumber(p.Steady.Rate, 0), p.Steady.Duration, p.Steady.Producers,
		rampList(p.RampRates), p.RampStep, p.RampProducers,
		queuebench.FormatNumber(float64(p.GrowthWaiting), 0), queuebench.FormatNumber(float64(p.GrowthFinished), 0),
		queuebench.FormatNumber(float64(p.GrowthMeasure), 0), p.Tx.Duration, p.Tx.Clients)
	if e.cutShort != "" {
		fmt.Fprintf(&b, "**The run was cut short**: %s.\n\n", e.cutShort)
	}
	b.WriteString("Each cell: median (lowest–highest) over the rounds; the ratio columns divide pgq's median by the peer's.\n\n")
	if err := res.WriteTable(&b); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func rampList(rates []float64) string {
	if len(rates) == 0 {
		return "(none)"
	}
	var s []string
	for _, r := range rates {
		s = append(s, queuebench.FormatNumber(r, 0))
	}
	return strings.Join(s, ", ") + " jobs/s"
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// commandLine names the command that reproduces the run.
func commandLine(o *options) string {
	if o.quick {
		return "cd bench && go run . -quick"
	}
	return "make bench-peers"
}
