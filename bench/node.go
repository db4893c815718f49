package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgq/pgq/internal/queuebench"
)

// nodeSetup is the Node.js side of the harness: the drivers in node/ and
// whether they can run here.
type nodeSetup struct {
	dir      string // absolute path of node/
	version  string // node --version
	versions map[string]string
	err      error // why the Node systems cannot run
}

// nodeMajorMin is the oldest Node.js the pinned graphile-worker and pg-boss
// versions run on.
const nodeMajorMin = 20

// prepareNode checks for Node.js and installs the drivers' packages with
// `npm ci` when node_modules is missing or older than package-lock.json.
// A failure is kept in err: the Node systems then report it and the run
// goes on without them.
func prepareNode(ctx context.Context, dir string, log io.Writer) *nodeSetup {
	n := &nodeSetup{versions: map[string]string{}}
	abs, err := filepath.Abs(dir)
	if err != nil {
		n.err = err
		return n
	}
	n.dir = abs
	out, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		n.err = fmt.Errorf("node.js is not installed (node --version: %v)", err)
		return n
	}
	n.version = strings.TrimSpace(string(out))
	if major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(n.version, "v"), ".", 2)[0]); major < nodeMajorMin {
		n.err = fmt.Errorf("node.js %s is too old: graphile-worker 0.17 and pg-boss 10 need %d or newer", n.version, nodeMajorMin)
		return n
	}
	if stale(filepath.Join(abs, "node_modules", ".package-lock.json"), filepath.Join(abs, "package-lock.json")) {
		fmt.Fprintln(log, "bench: installing the Node drivers' packages (npm ci)")
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = abs
		if out, err := cmd.CombinedOutput(); err != nil {
			n.err = fmt.Errorf("npm ci failed: %v: %s", err, lastLine(string(out)))
			return n
		}
	}
	for _, pkg := range []string{"graphile-worker", "pg-boss", "pg"} {
		b, err := os.ReadFile(filepath.Join(abs, "node_modules", pkg, "package.json"))
		if err != nil {
			n.err = fmt.Errorf("package %s is not installed in %s: %v", pkg, abs, err)
			return n
		}
		var meta struct{ Version string }
		if err := json.Unmarshal(b, &meta); err != nil {
			n.err = fmt.Errorf("read %s's package.json: %v", pkg, err)
			return n
		}
		n.versions[pkg] = meta.Version
	}
	return n
}

// stale reports whether target is missing or older than source.
func stale(target, source string) bool {
	t, err := os.Stat(target)
	if err != nil {
		return true
	}
	s, err := os.Stat(source)
	return err == nil && s.ModTime().After(t.ModTime())
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// nodeNames are the systems' names in the table.
var nodeNames = map[string]string{"graphile": "Graphile Worker", "pgboss": "pg-boss"}

func (s *server) nodeEntrant(n *nodeSetup, system string) queuebench.Entrant {
	return queuebench.Entrant{Name: nodeNames[system], Open: func(ctx context.Context) (queuebench.System, func(context.Context) error, error) {
		if n.err != nil {
			return nil, nil, n.err
		}
		url, drop, err := s.database(ctx, system)
		if err != nil {
			return nil, nil, err
		}
		sys := &nodeSystem{setup: n, system: system, url: url}
		if _, err := sys.call(ctx, "setup", nil, nil); err != nil {
			return nil, nil, errors.Join(err, drop(context.WithoutCancel(ctx)))
		}
		return sys, drop, nil
	}}
}

// nodeSystem is a Node.js queue as a queuebench.System: each workload runs
// node/driver.mjs once, which reports progress and its result as lines on
// stdout ("progress N", "result {json}").
type nodeSystem struct {
	setup  *nodeSetup
	system string // graphile or pgboss
	url    string
}

func (n *nodeSystem) call(ctx context.Context, workload string, params any, progress func(int)) (json.RawMessage, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(n.setup.dir, "driver.mjs"), n.system, workload, string(p))
	cmd.Dir = n.setup.dir
	cmd.Env = append(os.Environ(), "DATABASE_URL="+n.url)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var result json.RawMessage
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "progress "):
			if v, err := strconv.Atoi(strings.TrimPrefix(line, "progress ")); err == nil && progress != nil {
				progress(v)
			}
		case strings.HasPrefix(line, "result "):
			result = json.RawMessage(strings.TrimPrefix(line, "result "))
		}
	}
	err = cmd.Wait()
	if err != nil {
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		if strings.HasPrefix(msg, "not available: ") {
			return nil, queuebench.NotAvailable(strings.TrimPrefix(msg, "not available: "))
		}
		return nil, fmt.Errorf("%s %s: %s", n.system, workload, msg)
	}
	if result == nil && workload != "setup" {
		return nil, fmt.Errorf("%s %s: the driver printed no result", n.system, workload)
	}
	return result, nil
}

func decode[T any](raw json.RawMessage, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal(raw, &v)
}

func (n *nodeSystem) Drain(ctx context.Context, jobs int, progress func(int)) (queuebench.DrainResult, error) {
	return decode[queuebench.DrainResult](n.call(ctx, "drain", map[string]int{"jobs": jobs}, progress))
}

func (n *nodeSystem) Steady(ctx context.Context, p queuebench.SteadyParams, progress func(int)) (queuebench.SteadyResult, error) {
	return decode[queuebench.SteadyResult](n.call(ctx, "steady", p, progress))
}

func (n *nodeSystem) Growth(ctx context.Context, p queuebench.GrowthParams, progress func(int)) (queuebench.GrowthResult, error) {
	return decode[queuebench.GrowthResult](n.call(ctx, "growth", p, progress))
}

func (n *nodeSystem) TxCost(ctx context.Context, p queuebench.TxParams) (queuebench.TxResult, error) {
	return decode[queuebench.TxResult](n.call(ctx, "tx", p, nil))
}

func (n *nodeSystem) Workflow(ctx context.Context, members int, progress func(int)) (queuebench.WorkflowResult, error) {
	return decode[queuebench.WorkflowResult](n.call(ctx, "workflow", map[string]int{"members": members}, progress))
}

func (n *nodeSystem) Close(context.Context) error { return nil }
