package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/periodic"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// Limits of the API.
const (
	// JobsPageDefault and JobsPageMax bound one page of /api/jobs.
	JobsPageDefault = 50
	JobsPageMax     = 500
	// BulkMax is the most job ids one bulk action takes.
	BulkMax = 1000
	// goneWorkersWindow is how far back the workers page looks for
	// workers that finished jobs and are no longer registered.
	goneWorkersWindow = 10 * time.Minute
	// goneWorkersIDs is how many of the newest jobs that search reads.
	goneWorkersIDs = 100_000
	// controlTimeout bounds a remote-control call from the workers page.
	controlTimeout = 2 * time.Second
	maxBody        = 1 << 20
)

// jobStates are the states the jobs page filters by: queue.States and
// pending, the state of a workflow step waiting for an earlier one.
var jobStates = append([]string{"pending"}, queue.States...)

// aliveAge is the heartbeat age up to which a registered worker counts as
// alive: three missed heartbeats at the default interval.
const aliveAge = 3 * worker.HeartbeatIntervalDefault

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // HTML-escapes <, > and & as well
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// fail answers with the status that err calls for.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		if r.Context().Err() != nil {
			return // the client went away
		}
		h.log.Error("dashboard request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeError(w, status, err.Error())
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, queue.ErrJobNotFound), errors.Is(err, periodic.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, queue.ErrJobNotRetryable), errors.Is(err, queue.ErrJobFinished), errors.Is(err, queue.ErrJobRunning):
		return http.StatusConflict
	case errors.Is(err, queue.ErrInvalid), errors.Is(err, periodic.ErrInvalid), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// decodeBody reads a JSON body into v; an empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("request body: %v", err)
	}
	return nil
}

// --- session ---

type sessionJSON struct {
	ReadOnly        bool   `json:"read_only"`
	CSRFToken       string `json:"csrf_token"`
	CSRFHeader      string `json:"csrf_header"`
	Schema          string `json:"schema"`
	Logout          bool   `json:"logout"`
	Metrics         bool   `json:"metrics"`
	RefreshInterval int64  `json:"refresh_interval_ms"`
}

func (h *handler) apiSession(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, sessionJSON{
		ReadOnly: h.opts.ReadOnly, CSRFToken: csrfToken(w, r), CSRFHeader: CSRFHeader,
		Schema: h.client.Schema(), Logout: h.opts.Token != "", Metrics: h.opts.Metrics != nil,
		RefreshInterval: h.opts.RefreshInterval.Milliseconds(),
	})
}

// --- overview ---

// FinishedWindow is how far back the overview counts finished jobs
// (succeeded, failed, cancelled), through jobs_finished_idx: counting all
// of them would read the whole table at every refresh, and so would a long
// window on a busy queue (measured: an hour of 40,000 jobs made PostgreSQL
// scan the table). The queues page has the full counts; the charts the
// longer history.
const FinishedWindow = 5 * time.Minute

// Overview is the body of GET /api/overview and of the "overview" event.
// Counts of waiting and running jobs are complete; counts of finished
// jobs cover the last FinishedWindowSeconds.
type Overview struct {
	GeneratedAt           time.Time        `json:"generated_at"`
	FinishedWindowSeconds float64          `json:"finished_window_seconds"`
	Totals                map[string]int64 `json:"totals"`
	Queues                []QueueOverview  `json:"queues"`
	Workers               struct {
		Alive int `json:"alive"`
		Total int `json:"total"`
	} `json:"workers"`
}

// QueueOverview is one queue on the overview.
type QueueOverview struct {
	Name          string           `json:"name"`
	Paused        bool             `json:"paused"`
	Counts        map[string]int64 `json:"counts"`
	OldestWaiting *OldestWaiting   `json:"oldest_waiting,omitempty"`
}

// OldestWaiting is the job of a queue that has waited longest for a
// worker since its run time came.
type OldestWaiting struct {
	ID         int64     `json:"id"`
	RunAt      time.Time `json:"run_at"`
	AgeSeconds float64   `json:"age_seconds"`
}

// overview lists the queues that have a settings row, waiting or running
// jobs, or jobs finished within FinishedWindow.
func (h *handler) overview(ctx context.Context) (*Overview, error) {
	settings, err := h.q.DashboardQueueSettings(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue settings: %w", err)
	}
	counts, err := h.q.DashboardQueueCounts(ctx, time.Now().Add(-FinishedWindow))
	if err != nil {
		return nil, fmt.Errorf("queue counts: %w", err)
	}
	var waiting []string
	for _, c := range counts {
		switch c.State {
		case queue.StateScheduled, queue.StateAvailable, queue.StateRetrying:
			if !slices.Contains(waiting, c.Queue) {
				waiting = append(waiting, c.Queue)
			}
		}
	}
	oldest, err := h.q.DashboardOldestWaiting(ctx, waiting)
	if err != nil {
		return nil, fmt.Errorf("oldest waiting jobs: %w", err)
	}
	workers, err := h.client.Workers(ctx)
	if err != nil {
		return nil, err
	}
	o := &Overview{GeneratedAt: time.Now().UTC(), FinishedWindowSeconds: FinishedWindow.Seconds(), Totals: zeroCounts()}
	idx := map[string]int{}
	queueAt := func(name string) int {
		i, ok := idx[name]
		if !ok {
			i = len(o.Queues)
			idx[name] = i
			o.Queues = append(o.Queues, QueueOverview{Name: name, Counts: zeroCounts()})
		}
		return i
	}
	for _, q := range settings {
		o.Queues[queueAt(q.Name)].Paused = q.Paused
	}
	for _, c := range counts {
		o.Queues[queueAt(c.Queue)].Counts[c.State] += c.Count
		o.Totals[c.State] += c.Count
	}
	for _, r := range oldest {
		o.Queues[queueAt(r.Queue)].OldestWaiting = &OldestWaiting{ID: r.ID, RunAt: r.RunAt, AgeSeconds: r.AgeSeconds}
	}
	slices.SortFunc(o.Queues, func(a, b QueueOverview) int { return strings.Compare(a.Name, b.Name) })
	if o.Queues == nil {
		o.Queues = []QueueOverview{}
	}
	for _, wk := range workers {
		o.Workers.Total++
		if wk.HeartbeatAge <= aliveAge.Seconds() {
			o.Workers.Alive++
		}
	}
	return o, nil
}

func zeroCounts() map[string]int64 {
	m := make(map[string]int64, len(queue.States))
	for _, s := range queue.States {
		m[s] = 0
	}
	return m
}

func (h *handler) apiOverview(w http.ResponseWriter, r *http.Request) {
	o, err := h.overview(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// seriesRanges are the time ranges of the charts and their bucket sizes.
var seriesRanges = map[string]struct{ span, bucket time.Duration }{
	"5m":  {5 * time.Minute, 5 * time.Second},
	"15m": {15 * time.Minute, 15 * time.Second},
	"1h":  {time.Hour, time.Minute},
	"6h":  {6 * time.Hour, 5 * time.Minute},
	"24h": {24 * time.Hour, 15 * time.Minute},
}

// Series is the body of GET /api/series.
type Series struct {
	Range         string   `json:"range"`
	BucketSeconds float64  `json:"bucket_seconds"`
	Since         string   `json:"since"`
	Queue         string   `json:"queue,omitempty"`
	Points        []Bucket `json:"points"`
}

// Bucket is one time bucket of finished jobs; rates are per second.
type Bucket struct {
	At              time.Time `json:"at"`
	Succeeded       int64     `json:"succeeded"`
	Failed          int64     `json:"failed"`
	SucceededPerSec float64   `json:"succeeded_per_second"`
	FailedPerSec    float64   `json:"failed_per_second"`
	WaitAvgSeconds  float64   `json:"wait_avg_seconds"`
	WaitMaxSeconds  float64   `json:"wait_max_seconds"`
	RunAvgSeconds   float64   `json:"run_avg_seconds"`
	RunMaxSeconds   float64   `json:"run_max_seconds"`
}

func (h *handler) apiSeries(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("range")
	if name == "" {
		name = "15m"
	}
	rg, ok := seriesRanges[name]
	if !ok {
		h.fail(w, r, badRequest("range %q: use one of 5m, 15m, 1h, 6h, 24h", name))
		return
	}
	qname := r.URL.Query().Get("queue")
	now := time.Now().UTC()
	// Start on a bucket boundary so that every bucket is whole but the
	// last, which is still filling.
	since := now.Add(-rg.span).Truncate(rg.bucket)
	byAt, err := h.series.points(r.Context(), h.q, name+"\x00"+qname, since, now, rg.bucket, nonEmpty(qname))
	if err != nil {
		h.fail(w, r, fmt.Errorf("series: %w", err))
		return
	}
	out := Series{Range: name, BucketSeconds: rg.bucket.Seconds(), Since: since.Format(time.RFC3339), Queue: qname, Points: []Bucket{}}
	// Every bucket, empty ones too, so that charts have a point for each.
	for at := since; !at.After(now); at = at.Add(rg.bucket) {
		row := byAt[at.Unix()]
		secs := rg.bucket.Seconds()
		if end := at.Add(rg.bucket); end.After(now) {
			secs = max(now.Sub(at).Seconds(), 1)
		}
		out.Points = append(out.Points, Bucket{
			At: at, Succeeded: row.Succeeded, Failed: row.Failed,
			SucceededPerSec: float64(row.Succeeded) / secs, FailedPerSec: float64(row.Failed) / secs,
			WaitAvgSeconds: row.WaitAvgSeconds, WaitMaxSeconds: row.WaitMaxSeconds,
			RunAvgSeconds: row.RunAvgSeconds, RunMaxSeconds: row.RunMaxSeconds,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// seriesSettle is how old a bucket must be before the series cache takes
// it as final: a completion is stamped with its transaction's start, which
// may commit a little later.
const seriesSettle = 10 * time.Second

// seriesCacheMax bounds the number of cached charts (range and queue).
const seriesCacheMax = 64

// seriesCache keeps the buckets of each chart that can no longer change,
// so that a chart over 24 hours reads the table once and then only its
// newest buckets: on 1M rows the full 24-hour query took seconds.
type seriesCache struct {
	mu sync.Mutex
	m  map[string]*seriesEntry
}

type seriesEntry struct {
	final time.Time                       // buckets starting before it are final
	rows  map[int64]db.DashboardSeriesRow // by bucket start (Unix seconds)
}

// points returns the buckets from since to now, by start time.
func (c *seriesCache) points(ctx context.Context, q *db.Queries, key string, since, now time.Time, bucket time.Duration, queueName *string) (map[int64]db.DashboardSeriesRow, error) {
	out := map[int64]db.DashboardSeriesRow{}
	from := since
	c.mu.Lock()
	if e := c.m[key]; e != nil && e.final.After(since) {
		from = e.final
		for at, row := range e.rows {
			if at >= since.Unix() && at < from.Unix() {
				out[at] = row
			}
		}
	}
	c.mu.Unlock()
	rows, err := q.DashboardSeries(ctx, db.DashboardSeriesParams{BucketSeconds: bucket.Seconds(), Since: from, Queue: queueName})
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		out[row.Bucket.Unix()] = *row
	}
	final := now.Add(-seriesSettle).Truncate(bucket)
	e := &seriesEntry{final: final, rows: map[int64]db.DashboardSeriesRow{}}
	for at, row := range out {
		if at < final.Unix() {
			e.rows[at] = row
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*seriesEntry{}
	}
	if _, ok := c.m[key]; !ok && len(c.m) >= seriesCacheMax {
		for k := range c.m { // drop any one
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
	return out, nil
}

// --- jobs ---

// JobRow is one line of GET /api/jobs.
type JobRow struct {
	ID          int64      `json:"id"`
	Task        string     `json:"task"`
	Queue       string     `json:"queue"`
	State       string     `json:"state"`
	Priority    int        `json:"priority"`
	Attempt     int        `json:"attempt"`
	MaxRetries  int        `json:"max_retries"`
	RunAt       time.Time  `json:"run_at"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	WorkerID    string     `json:"worker_id,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	ArgsPreview string     `json:"args_preview"`
}

// JobsPage is the body of GET /api/jobs. NextBefore, when not 0, is the
// value of ?before= that continues the listing with older jobs.
//
// One request reads at most JobsScanIDs ids of the table (from before
// down): a page can therefore hold fewer than limit jobs although older
// ones match. ScannedToID says where the request stopped; NextBefore then
// equals it, and the pages's script asks for the next range itself.
type JobsPage struct {
	Jobs        []JobRow `json:"jobs"`
	NextBefore  int64    `json:"next_before,omitempty"`
	ScannedToID int64    `json:"scanned_to_id"`
}

// JobsScanIDs is how many consecutive job ids one request to /api/jobs
// examines at most: it bounds the time of a request whose filters match
// few jobs (about 30 to 150 ms on the measured machine, docs/dashboard.md).
const JobsScanIDs = 100_000

// JobsSearchScanIDs replaces JobsScanIDs for a request with a search text,
// which reads every row's args and errors as text.
const JobsSearchScanIDs = 20_000

func (h *handler) apiJobs(w http.ResponseWriter, r *http.Request) {
	p, limit, err := jobsParams(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p.BeforeID == 0 {
		maxID, err := h.q.DashboardMaxJobID(r.Context())
		if err != nil {
			h.fail(w, r, fmt.Errorf("list jobs: %w", err))
			return
		}
		p.BeforeID = maxID + 1
	}
	scan := int64(JobsScanIDs)
	if p.Search != nil {
		scan = JobsSearchScanIDs
	}
	p.MinID = max(p.BeforeID-scan, 0)
	rows, err := h.q.DashboardJobs(r.Context(), p)
	if err != nil {
		h.fail(w, r, fmt.Errorf("list jobs: %w", err))
		return
	}
	page := JobsPage{Jobs: make([]JobRow, len(rows)), ScannedToID: p.MinID}
	for i, j := range rows {
		page.Jobs[i] = JobRow{ID: j.ID, Task: j.Task, Queue: j.Queue, State: j.State, Priority: int(j.Priority),
			Attempt: int(j.Attempt), MaxRetries: int(j.MaxRetries), RunAt: j.RunAt, CreatedAt: j.CreatedAt,
			StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, WorkerID: j.WorkerID, LastError: j.LastError, ArgsPreview: j.ArgsPreview}
	}
	switch {
	case len(rows) == limit:
		page.NextBefore = rows[len(rows)-1].ID
		page.ScannedToID = page.NextBefore
	case p.MinID > 1:
		page.NextBefore = p.MinID // the range ended before the page filled
	}
	writeJSON(w, http.StatusOK, page)
}

func jobsParams(r *http.Request) (db.DashboardJobsParams, int, error) {
	q := r.URL.Query()
	var p db.DashboardJobsParams
	if s := q.Get("state"); s != "" {
		if !slices.Contains(jobStates, s) {
			return p, 0, badRequest("state %q: use one of %v", s, jobStates)
		}
		p.State = &s
	}
	p.Queue, p.Task = nonEmpty(q.Get("queue")), nonEmpty(q.Get("task"))
	if s := strings.TrimSpace(q.Get("q")); s != "" {
		if len(s) > 200 {
			return p, 0, badRequest("q: search text longer than 200 bytes")
		}
		p.Search = &s
	}
	var err error
	if p.CreatedFrom, err = timeParam(q.Get("from"), "from"); err != nil {
		return p, 0, err
	}
	if p.CreatedTo, err = timeParam(q.Get("to"), "to"); err != nil {
		return p, 0, err
	}
	if s := q.Get("before"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return p, 0, badRequest("before %q: not a job id", s)
		}
		p.BeforeID = id
	}
	limit := JobsPageDefault
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > JobsPageMax {
			return p, 0, badRequest("limit %q: use 1 to %d", s, JobsPageMax)
		}
		limit = n
	}
	p.MaxRows = int32(limit)
	return p, limit, nil
}

// timeParam parses an RFC 3339 time, or a duration ago ("15m" means 15
// minutes ago).
func timeParam(s, name string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		t := time.Now().Add(-d)
		return &t, nil
	}
	return nil, badRequest("%s %q: use an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (15m, 2h)", name, s)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// JobDetail is the body of GET /api/jobs/{id}. Workflow is the tree of
// the workflow the job belongs to (package workflow), nil for a job
// enqueued on its own.
type JobDetail struct {
	Job      *queue.Job     `json:"job"`
	Timeline []Event        `json:"timeline"`
	Workflow *workflow.Step `json:"workflow,omitempty"`
}

// Event is one step in a job's life.
type Event struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"` // created, scheduled, error, started, finished
	Attempt int       `json:"attempt,omitempty"`
	Text    string    `json:"text"`
}

func pathID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("job id %q: not a positive integer", s)
	}
	return id, nil
}

func (h *handler) apiJob(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	j, err := h.client.Job(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if j.Errors == nil {
		j.Errors = []queue.JobError{}
	}
	d := JobDetail{Job: j, Timeline: timeline(j)}
	if j.RootID != nil {
		tree, err := workflow.Inspect(r.Context(), h.client, id)
		switch {
		case err == nil:
			d.Workflow = tree
		case !errors.Is(err, workflow.ErrNotFound): // a tree already pruned is no error
			h.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// timeline orders what is known of a job's attempts: its creation, each
// failed attempt from the error history, the start of the last attempt and
// its end.
func timeline(j *queue.Job) []Event {
	ev := []Event{{At: j.CreatedAt, Kind: "created", Text: "enqueued on " + j.Queue}}
	if j.RunAt.After(j.CreatedAt.Add(time.Second)) && j.StartedAt == nil {
		ev = append(ev, Event{At: j.RunAt, Kind: "scheduled", Text: "due to run"})
	}
	for _, e := range j.Errors {
		ev = append(ev, Event{At: e.At, Kind: "error", Attempt: e.Attempt, Text: e.Error})
	}
	if j.StartedAt != nil {
		ev = append(ev, Event{At: *j.StartedAt, Kind: "started", Attempt: j.Attempt, Text: "attempt " + strconv.Itoa(j.Attempt) + " started on " + j.WorkerID})
	}
	if j.FinishedAt != nil {
		ev = append(ev, Event{At: *j.FinishedAt, Kind: "finished", Attempt: j.Attempt, Text: j.State})
	}
	slices.SortStableFunc(ev, func(a, b Event) int { return a.At.Compare(b.At) })
	return ev
}

// ActionResult is the body of a successful action on one job.
type ActionResult struct {
	ID      int64          `json:"id"`
	Action  string         `json:"action"`
	OK      bool           `json:"ok"`
	Error   string         `json:"error,omitempty"`
	Revoked *queue.Revoked `json:"revoked,omitempty"`
}

type revokeBody struct {
	Terminate *bool `json:"terminate"`
}

func (h *handler) jobAction(ctx context.Context, id int64, action string, terminate bool) (ActionResult, error) {
	res := ActionResult{ID: id, Action: action}
	var err error
	switch action {
	case "retry":
		err = h.client.Retry(ctx, id)
	case "revoke", "cancel":
		var rv queue.Revoked
		rv, err = h.client.Revoke(ctx, id, terminate)
		if err == nil {
			res.Revoked = &rv
		}
	case "delete":
		err = h.client.Delete(ctx, id)
	default:
		return res, badRequest("unknown job action %q: use retry, revoke or delete", action)
	}
	if err != nil {
		return res, err
	}
	res.OK = true
	return res, nil
}

func (h *handler) apiJobAction(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var b revokeBody
	if err := decodeBody(r, &b); err != nil {
		h.fail(w, r, err)
		return
	}
	terminate := b.Terminate == nil || *b.Terminate // the page's revoke stops a running job
	res, err := h.jobAction(r.Context(), id, r.PathValue("action"), terminate)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// BulkRequest is the body of POST /api/jobs/bulk.
type BulkRequest struct {
	Action    string  `json:"action"` // retry, revoke (or cancel), delete
	IDs       []int64 `json:"ids"`
	Terminate *bool   `json:"terminate,omitempty"`
}

// BulkResult is the answer to a bulk action: one result per id, in the
// order given; a failure of one id does not stop the others.
type BulkResult struct {
	Action  string         `json:"action"`
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	Results []ActionResult `json:"results"`
}

func (h *handler) apiJobsBulk(w http.ResponseWriter, r *http.Request) {
	var b BulkRequest
	if err := decodeBody(r, &b); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(b.IDs) == 0 || len(b.IDs) > BulkMax {
		h.fail(w, r, badRequest("ids: give 1 to %d job ids", BulkMax))
		return
	}
	switch b.Action {
	case "retry", "revoke", "cancel", "delete":
	default:
		h.fail(w, r, badRequest("unknown bulk action %q: use retry, revoke or delete", b.Action))
		return
	}
	terminate := b.Terminate == nil || *b.Terminate
	out := BulkResult{Action: b.Action, Results: make([]ActionResult, 0, len(b.IDs))}
	for _, id := range b.IDs {
		res, err := h.jobAction(r.Context(), id, b.Action, terminate)
		if err != nil {
			if statusOf(err) == http.StatusInternalServerError {
				h.fail(w, r, err)
				return
			}
			res.Error = err.Error()
			out.Failed++
		} else {
			out.OK++
		}
		out.Results = append(out.Results, res)
	}
	writeJSON(w, http.StatusOK, out)
}

// --- workers ---

// WorkerRow is a worker on the workers page. Status is "alive" (recent
// heartbeat), "unresponsive" (registered, heartbeat older than three
// intervals: dead or stuck, its jobs are rescued after RescueAfter) or
// "gone" (no longer registered, finished jobs within the last 10 minutes).
type WorkerRow struct {
	queue.WorkerInfo
	Status         string            `json:"status"`
	ActiveJobs     []queue.ActiveJob `json:"active_jobs"`
	LastFinishedAt *time.Time        `json:"last_finished_at,omitempty"`
	FinishedLately int64             `json:"finished_lately,omitempty"`
}

// WorkersPage is the body of GET /api/workers.
type WorkersPage struct {
	Workers []WorkerRow `json:"workers"`
}

func (h *handler) apiWorkers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ws, err := h.client.Workers(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	active, err := h.client.ActiveJobs(ctx, "", 5000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	byWorker := map[string][]queue.ActiveJob{}
	for _, a := range active {
		if len(byWorker[a.WorkerID]) < 50 {
			byWorker[a.WorkerID] = append(byWorker[a.WorkerID], a)
		}
	}
	page := WorkersPage{Workers: []WorkerRow{}}
	for _, wk := range ws {
		st := "alive"
		if wk.HeartbeatAge > aliveAge.Seconds() {
			st = "unresponsive"
		}
		if wk.Queues == nil {
			wk.Queues = []string{}
		}
		aj := byWorker[wk.ID]
		if aj == nil {
			aj = []queue.ActiveJob{}
		}
		page.Workers = append(page.Workers, WorkerRow{WorkerInfo: wk, Status: st, ActiveJobs: aj})
	}
	maxID, err := h.q.DashboardMaxJobID(ctx)
	if err != nil {
		h.fail(w, r, fmt.Errorf("gone workers: %w", err))
		return
	}
	gone, err := h.q.DashboardGoneWorkers(ctx, db.DashboardGoneWorkersParams{
		Since: time.Now().Add(-goneWorkersWindow), MinID: max(maxID-goneWorkersIDs, 0), MaxRows: 50})
	if err != nil {
		h.fail(w, r, fmt.Errorf("gone workers: %w", err))
		return
	}
	for _, g := range gone {
		last := g.LastFinishedAt
		page.Workers = append(page.Workers, WorkerRow{
			WorkerInfo: queue.WorkerInfo{ID: g.WorkerID, Queues: []string{}},
			Status:     "gone", ActiveJobs: []queue.ActiveJob{}, LastFinishedAt: &last, FinishedLately: g.Finished,
		})
	}
	writeJSON(w, http.StatusOK, page)
}

// ControlAnswer is the answer to an action on a worker: the worker's
// reply, or that it did not reply in time.
type ControlAnswer struct {
	WorkerID string              `json:"worker_id"`
	Command  string              `json:"command"`
	Replied  bool                `json:"replied"`
	Reply    *queue.ControlReply `json:"reply,omitempty"`
}

// PoolSizeRequest is the body of POST /api/workers/{id}/pool-size.
type PoolSizeRequest struct {
	Concurrency int `json:"concurrency,omitempty"`
	Min         int `json:"min,omitempty"`
	Max         int `json:"max,omitempty"`
}

func (h *handler) apiWorkerAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var cmd string
	var args any
	switch r.PathValue("action") {
	case "shutdown":
		cmd = queue.ControlShutdown
	case "pool-size":
		var b PoolSizeRequest
		if err := decodeBody(r, &b); err != nil {
			h.fail(w, r, err)
			return
		}
		fixed := b.Concurrency > 0
		scaled := b.Min > 0 && b.Max >= b.Min
		if fixed == scaled || b.Concurrency < 0 || b.Min < 0 || b.Max < 0 || b.Concurrency > 10000 || b.Max > 10000 {
			h.fail(w, r, badRequest(`pool-size: send {"concurrency": n} or {"min": a, "max": b} with 1 <= a <= b <= 10000`))
			return
		}
		cmd, args = queue.ControlPoolSize, queue.PoolSizeArgs{Concurrency: b.Concurrency, Min: b.Min, Max: b.Max}
	default:
		h.fail(w, r, badRequest("unknown worker action %q: use shutdown or pool-size", r.PathValue("action")))
		return
	}
	res, err := h.client.Control(r.Context(), cmd, args, &queue.ControlOptions{Workers: []string{id}, Timeout: controlTimeout})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ans := ControlAnswer{WorkerID: id, Command: cmd}
	for i := range res.Replies {
		if res.Replies[i].WorkerID == id {
			ans.Replied, ans.Reply = true, &res.Replies[i]
		}
	}
	status := http.StatusOK
	if !ans.Replied {
		status = http.StatusGatewayTimeout
	}
	writeJSON(w, status, ans)
}

// --- queues ---

// QueuesPage is the body of GET /api/queues.
type QueuesPage struct {
	Queues []queue.QueueInfo `json:"queues"`
}

func (h *handler) apiQueues(w http.ResponseWriter, r *http.Request) {
	qs, err := h.client.ListQueues(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if qs == nil {
		qs = []queue.QueueInfo{}
	}
	writeJSON(w, http.StatusOK, QueuesPage{Queues: qs})
}

// PurgeRequest is the body of POST /api/queues/{name}/purge: Confirm must
// repeat the queue's name.
type PurgeRequest struct {
	Confirm string `json:"confirm"`
}

// SettingsRequest is the body of POST /api/queues/{name}/settings: the
// queue's default options, replacing the previous ones (absent or null
// fields are cleared).
type SettingsRequest struct {
	Priority        *int   `json:"priority"`
	MaxRetries      *int   `json:"max_retries"`
	RetryDelayMs    *int64 `json:"retry_delay_ms"`
	TimeLimitMs     *int64 `json:"time_limit_ms"`
	SoftTimeLimitMs *int64 `json:"soft_time_limit_ms"`
}

// QueueActionResult is the answer to an action on a queue.
type QueueActionResult struct {
	Queue   string `json:"queue"`
	Action  string `json:"action"`
	OK      bool   `json:"ok"`
	Deleted *int64 `json:"deleted,omitempty"`
}

func (h *handler) apiQueueAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, action := r.PathValue("name"), r.PathValue("action")
	res := QueueActionResult{Queue: name, Action: action, OK: true}
	var err error
	switch action {
	case "pause":
		err = h.client.PauseQueue(ctx, name)
	case "resume":
		err = h.client.ResumeQueue(ctx, name)
	case "purge":
		var b PurgeRequest
		if err := decodeBody(r, &b); err != nil {
			h.fail(w, r, err)
			return
		}
		if b.Confirm != name {
			n, cerr := h.client.CountWaiting(ctx, name)
			if cerr != nil {
				h.fail(w, r, cerr)
				return
			}
			h.fail(w, r, badRequest(`purge would delete the %d waiting jobs of queue %s: send {"confirm": %q} to do it`, n, name, name))
			return
		}
		var n int64
		n, err = h.client.PurgeQueue(ctx, name)
		res.Deleted = &n
	case "settings":
		var b SettingsRequest
		if err := decodeBody(r, &b); err != nil {
			h.fail(w, r, err)
			return
		}
		ms := func(p *int64) time.Duration {
			if p == nil {
				return 0
			}
			return time.Duration(*p) * time.Millisecond
		}
		for _, f := range []struct {
			name string
			v    *int64
		}{{"retry_delay_ms", b.RetryDelayMs}, {"time_limit_ms", b.TimeLimitMs}, {"soft_time_limit_ms", b.SoftTimeLimitMs}} {
			if f.v != nil && (*f.v <= 0 || *f.v > 1<<31-1) {
				h.fail(w, r, badRequest("%s: use a positive number of milliseconds, or null for none", f.name))
				return
			}
		}
		err = h.client.SetQueueDefaults(ctx, name, queue.QueueDefaults{Priority: b.Priority, MaxRetries: b.MaxRetries,
			RetryDelay: ms(b.RetryDelayMs), TimeLimit: ms(b.TimeLimitMs), SoftTimeLimit: ms(b.SoftTimeLimitMs)})
	default:
		err = badRequest("unknown queue action %q: use pause, resume, purge or settings", action)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// --- periodic ---

// PeriodicPage is the body of GET /api/periodic.
type PeriodicPage struct {
	Tasks []periodic.Status `json:"tasks"`
}

func (h *handler) apiPeriodic(w http.ResponseWriter, r *http.Request) {
	ts, err := h.periodic.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ts == nil {
		ts = []periodic.Status{}
	}
	writeJSON(w, http.StatusOK, PeriodicPage{Tasks: ts})
}

// PeriodicActionResult is the answer to an action on a periodic task.
type PeriodicActionResult struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	OK     bool   `json:"ok"`
	// JobID is the job that run enqueued.
	JobID int64 `json:"job_id,omitempty"`
}

func (h *handler) apiPeriodicAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, action := r.PathValue("name"), r.PathValue("action")
	res := PeriodicActionResult{Name: name, Action: action, OK: true}
	var err error
	switch action {
	case "enable":
		err = h.periodic.Enable(ctx, name)
	case "disable":
		err = h.periodic.Disable(ctx, name)
	case "run":
		var e queue.Enqueued
		e, err = h.periodic.RunNow(ctx, name)
		res.JobID = e.ID
	default:
		err = badRequest("unknown periodic action %q: use enable, disable or run", action)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
