// Package metrics exports pgq's figures to Prometheus (client_golang).
//
// There are two sources, because they answer different questions:
//
//   - Collector reads pgq's tables at scrape time: jobs by queue, task and
//     state, the age of the oldest runnable job per queue, paused queues,
//     live workers and their slots. It is the truth for the whole cluster,
//     the same whichever process reads it, so one process should export it
//     (the dashboard, or one worker with `pgq worker --metrics-cluster`).
//   - WorkerMetrics and ClientMetrics count, inside a process, what that
//     process did: attempts by outcome, run time and wait time
//     histograms, jobs enqueued. Every worker exports its own; Prometheus
//     sums them. Counters survive retention (the tables forget finished
//     jobs; a counter does not) and histograms give latency percentiles
//     that counting rows cannot.
//
// # Use
//
//	wm := metrics.NewWorkerMetrics()
//	w, err := worker.New(pool, reg, &worker.Config{Observer: wm})
//	...
//	c, err := metrics.NewCollector(pool, "pgq", nil) // in one process only
//	...
//	promReg, err := metrics.NewRegistry(wm, c)
//	...
//	http.Handle("/metrics", metrics.Handler(promReg))
//
// Or register them in a registry of your own: all three are
// prometheus.Collectors. Metric names, labels and example queries are in
// docs/observability.md.
//
// # Cost
//
// WorkerMetrics runs on the worker's hot path (worker.Observer): a read
// of an immutable map and an atomic add per counter or histogram, no
// lock, no allocation (a mutex only when a queue and task pair is first
// seen). Collector costs nothing between scrapes; at a
// scrape it runs three queries that read only the backlog, the running
// jobs, the queues and the workers, and with CollectorConfig.CountFinished
// a fourth that reads every finished row retention keeps.
package metrics
