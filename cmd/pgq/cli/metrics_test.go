package cli_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

// TestWorkerMetricsAddr runs `pgq worker --metrics-addr 127.0.0.1:0
// --metrics-cluster`, scrapes its /metrics while it works, and checks that
// the server is gone once the worker stops.
func TestWorkerMetricsAddr(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustRun(t, "enqueue", "pgq.noop")
	b.mustRun(t, "enqueue", "pgq.noop")
	b.mustRun(t, "enqueue", "pgq.fail", "--args", `{"message":"on purpose","permanent":true}`)
	b.mustRun(t, "enqueue", "pgq.noop", "-q", "idle") // no worker takes it

	ctx, cancel := context.WithCancel(t.Context())
	out := newWatchWriter("/metrics\n")
	root := cli.New(&cli.Options{Getenv: func(string) string { return "" }})
	root.SetOut(out)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"--database-url", b.db.URL, "--schema", b.db.Schema,
		"worker", "--metrics-addr", "127.0.0.1:0", "--metrics-cluster"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var (
		stopOnce sync.Once
		stopErr  error
	)
	stop := func() error {
		stopOnce.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
				if errors.Is(stopErr, context.Canceled) {
					stopErr = nil
				}
			case <-time.After(30 * time.Second):
				stopErr = errors.New("pgq worker did not stop")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })

	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("pgq worker ended before serving metrics: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no metrics address in the output:\n%s", out.String())
	}
	m := regexp.MustCompile(`metrics at (http://\S+/metrics)`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	url := m[1]

	want := []string{
		`pgq_worker_attempts_total{outcome="succeeded",queue="default",task="pgq.noop"} 2`,
		`pgq_worker_attempts_total{outcome="failed",queue="default",task="pgq.fail"} 1`,
		`pgq_worker_wait_seconds_count{queue="default",task="pgq.noop"} 2`,
		`pgq_jobs{queue="idle",state="available",task="pgq.noop"} 1`,
		`pgq_workers_alive 1`,
		`pgq_up 1`,
	}
	// The jobs run in the background: scrape until every figure is there.
	var text string
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for missing := want; len(missing) > 0; <-tick.C {
		require.True(t, time.Now().Before(deadline), "missing %q in:\n%s", missing, text)
		text = get(t, url)
		missing = missing[:0:0]
		for _, w := range want {
			if !strings.Contains(text, w+"\n") {
				missing = append(missing, w)
			}
		}
	}
	require.Contains(t, text, "go_goroutines")

	require.NoError(t, stop())
	_, err := http.Get(url)
	require.Error(t, err, "the metrics server still answers after the worker stopped")
}

func TestWorkerMetricsAddrInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run(t, "worker", "--burst", "--metrics-addr", "not an address")
	require.ErrorContains(t, r.err, "--metrics-addr")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
