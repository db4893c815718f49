package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/metrics"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// A worker that counts its attempts, and its counters as Prometheus
// reads them.
func Example() {
	ctx := context.Background()
	d, release, err := pgtest.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer release()

	reg := worker.NewRegistry()
	reg.HandleFunc("hello", func(context.Context, *worker.Job[json.RawMessage]) (any, error) { return "hi", nil }, nil)
	client, _ := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	_, _ = client.Enqueue(ctx, queue.Raw{Task: "hello"}, nil)

	wm := metrics.NewWorkerMetrics()
	w, _ := worker.New(d.Pool, reg, &worker.Config{
		Schema: d.Schema, Burst: true, Observer: wm, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := w.Run(ctx); err != nil { // Burst: until the queue is empty
		fmt.Println(err)
		return
	}

	promReg, _ := metrics.NewRegistry(wm)
	srv := httptest.NewServer(metrics.Handler(promReg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "pgq_worker_attempts_total{") {
			fmt.Println(line)
		}
	}
	// Output:
	// pgq_worker_attempts_total{outcome="failed",queue="default",task="hello"} 0
	// pgq_worker_attempts_total{outcome="retried",queue="default",task="hello"} 0
	// pgq_worker_attempts_total{outcome="succeeded",queue="default",task="hello"} 1
}
