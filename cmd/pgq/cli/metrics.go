package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgq/pgq/metrics"
	"github.com/pgq/pgq/worker"
)

// workerMetrics is what `pgq worker --metrics-addr` adds to a worker: an
// observer for its Config and an HTTP server for Prometheus.
type workerMetrics struct {
	observer worker.Observer // nil: metrics are off
	srv      *http.Server
	done     chan error
}

// startWorkerMetrics serves the worker's own metrics (and with cluster
// the tables' figures, see metrics.Collector) at http://addr/metrics
// until stop is called. An empty addr turns metrics off.
func startWorkerMetrics(s *session, addr string, cluster bool, out io.Writer, log *slog.Logger) (*workerMetrics, error) {
	if addr == "" {
		return &workerMetrics{}, nil
	}
	wm := metrics.NewWorkerMetrics()
	cs := []prometheus.Collector{wm}
	if cluster {
		c, err := metrics.NewCollector(s.pool, s.schema, &metrics.CollectorConfig{Logger: log})
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	reg, err := metrics.NewRegistry(cs...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	m := &workerMetrics{
		observer: wm,
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done:     make(chan error, 1),
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	fmt.Fprintf(out, "pgq worker: metrics at http://%s/metrics\n", ln.Addr())
	return m, nil
}

// stop closes the metrics server, letting a scrape in progress finish.
func (m *workerMetrics) stop() error {
	if m.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serveErr := <-m.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
