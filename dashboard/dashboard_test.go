package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/dashboard"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/periodic"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// bundle is what a test needs: a schema, a client on it and a dashboard
// server.
type bundle struct {
	db     *pgtest.DB
	client *queue.Client
	srv    *httptest.Server
	opts   *dashboard.Options
}

func setup(t *testing.T, opts *dashboard.Options) *bundle {
	t.Helper()
	d := pgtest.New(t)
	client, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	if opts == nil {
		opts = &dashboard.Options{}
	}
	opts.Schema = d.Schema
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = 100 * time.Millisecond
	}
	h, err := dashboard.New(d.Pool, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &bundle{db: d, client: client, srv: srv, opts: opts}
}

func (b *bundle) enqueue(t *testing.T, task, args string, o *queue.Options) int64 {
	t.Helper()
	e, err := b.client.Enqueue(context.Background(), queue.Raw{Task: task, Args: json.RawMessage(args)}, o)
	require.NoError(t, err)
	return e.ID
}

// runBurst runs a worker with the built-in tasks until the queues are
// empty.
func (b *bundle) runBurst(t *testing.T, queues ...string) {
	t.Helper()
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(b.db.Pool, reg, &worker.Config{Schema: b.db.Schema, Queues: queues, Burst: true, Logger: quietLogger()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.Run(ctx))
}

// failedJob enqueues a job that fails permanently and runs it.
func (b *bundle) failedJob(t *testing.T, q, msg string) int64 {
	t.Helper()
	id := b.enqueue(t, worker.TaskFail, fmt.Sprintf(`{"message": %q, "permanent": true}`, msg), &queue.Options{Queue: q})
	b.runBurst(t, q)
	j, err := b.client.Job(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateFailed, j.State)
	return id
}

type req struct {
	method, path string
	body         any
	header       map[string]string
	cookies      []*http.Cookie
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (b *bundle) do(t *testing.T, r req, out any) *http.Response {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		data, err := json.Marshal(r.body)
		require.NoError(t, err)
		body = strings.NewReader(string(data))
	}
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr, err := http.NewRequest(r.method, b.srv.URL+r.path, body)
	require.NoError(t, err)
	for k, v := range r.header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(hr)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if out != nil && res.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(data, out), "body: %s", data)
	}
	if out == nil && res.StatusCode >= 400 {
		t.Logf("%s %s: %d %s", r.method, r.path, res.StatusCode, data)
	}
	return res
}

func TestOverviewCountsQueuesAndOldestWaiting(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	first := b.enqueue(t, "mail.send", `{}`, &queue.Options{Queue: "mail"})
	b.enqueue(t, "mail.send", `{}`, &queue.Options{Queue: "mail"})
	b.enqueue(t, "mail.send", `{}`, &queue.Options{Queue: "mail", Countdown: time.Hour})
	// Jobs of other priorities: a later one, and one not due yet.
	b.enqueue(t, "mail.send", `{}`, &queue.Options{Queue: "mail", Priority: queue.Ptr(5)})
	b.enqueue(t, "mail.send", `{}`, &queue.Options{Queue: "mail", Priority: queue.Ptr(9), Countdown: time.Hour})
	b.enqueue(t, "report.build", `{}`, &queue.Options{Queue: "reports"})
	require.NoError(t, b.client.PauseQueue(context.Background(), "reports"))

	var o dashboard.Overview
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/overview"}, &o).StatusCode)
	require.Len(t, o.Queues, 2)
	mail, reports := o.Queues[0], o.Queues[1]
	require.Equal(t, "mail", mail.Name)
	require.Equal(t, int64(3), mail.Counts[queue.StateAvailable])
	require.Equal(t, int64(2), mail.Counts[queue.StateScheduled])
	require.Equal(t, int64(0), mail.Counts[queue.StateFailed], "every state is present")
	require.NotNil(t, mail.OldestWaiting)
	require.Equal(t, first, mail.OldestWaiting.ID)
	require.True(t, reports.Paused)
	require.Equal(t, int64(4), o.Totals[queue.StateAvailable])
	require.NotNil(t, reports.OldestWaiting)
}

func TestJobsListFiltersSearchAndKeysetPages(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	reqs := make([]queue.Request, 120)
	for i := range reqs {
		reqs[i] = queue.Request{Args: queue.Raw{Task: "bulk.item", Args: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i))}, Options: &queue.Options{Queue: "bulk"}}
	}
	_, err := b.client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	needle := b.enqueue(t, "other.task", `{"customer": "Zebra-Crossing Ltd"}`, &queue.Options{Queue: "other"})
	failed := b.failedJob(t, "flaky", "disk quota EXCEEDED on volume 7")

	// Keyset pages: newest first, no overlap, no gap.
	seen := map[int64]bool{}
	before := int64(0)
	pages := 0
	for {
		path := "/api/jobs?queue=bulk&limit=50"
		if before != 0 {
			path += fmt.Sprintf("&before=%d", before)
		}
		var p dashboard.JobsPage
		require.Equal(t, http.StatusOK, b.do(t, req{path: path}, &p).StatusCode)
		pages++
		for i, j := range p.Jobs {
			require.False(t, seen[j.ID], "job %d listed twice", j.ID)
			seen[j.ID] = true
			if i > 0 {
				require.Less(t, j.ID, p.Jobs[i-1].ID)
			}
			require.Equal(t, "bulk", j.Queue)
		}
		if p.NextBefore == 0 {
			break
		}
		before = p.NextBefore
	}
	require.Len(t, seen, 120)
	require.Equal(t, 3, pages)

	cases := []struct {
		name  string
		query string
		want  []int64
	}{
		{"search in args, any case", "q=" + url.QueryEscape("zebra-crossing"), []int64{needle}},
		{"search in errors", "q=" + url.QueryEscape("quota exceeded"), []int64{failed}},
		{"state", "state=failed", []int64{failed}},
		{"task and queue", "task=other.task&queue=other", []int64{needle}},
		{"created after now", "from=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), nil},
		{"created in the last hour", "from=1h&queue=other", []int64{needle}},
		{"search that matches nothing", "q=%25", nil},
	}
	for _, c := range cases {
		var p dashboard.JobsPage
		require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/jobs?" + c.query}, &p).StatusCode, c.name)
		var got []int64
		for _, j := range p.Jobs {
			got = append(got, j.ID)
		}
		require.Equal(t, c.want, got, c.name)
	}
	for _, bad := range []string{"state=nope", "limit=0", "limit=100000", "before=x", "from=yesterday"} {
		require.Equal(t, http.StatusBadRequest, b.do(t, req{path: "/api/jobs?" + bad}, nil).StatusCode, bad)
	}
}

// TestJobsListReadsBoundedIDRanges: a request reads at most JobsScanIDs
// ids; a page that could not fill says where to go on, and following
// next_before finds every job.
func TestJobsListReadsBoundedIDRanges(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	low := b.enqueue(t, "sparse.task", `{}`, nil)
	// A job far above the others (ids are identity values a caller may
	// also set).
	high := low + 3*dashboard.JobsScanIDs + 5
	_, err := b.db.Pool.Exec(context.Background(), fmt.Sprintf(`INSERT INTO %q.jobs (id, task) VALUES ($1, 'sparse.task')`, b.db.Schema), high)
	require.NoError(t, err)

	var found []int64
	requests := 0
	path := "/api/jobs?task=sparse.task"
	for {
		var p dashboard.JobsPage
		require.Equal(t, http.StatusOK, b.do(t, req{path: path}, &p).StatusCode)
		requests++
		for _, j := range p.Jobs {
			found = append(found, j.ID)
		}
		if p.NextBefore == 0 {
			break
		}
		require.Equal(t, p.ScannedToID, p.NextBefore)
		path = fmt.Sprintf("/api/jobs?task=sparse.task&before=%d", p.NextBefore)
	}
	require.Equal(t, []int64{high, low}, found)
	require.Equal(t, 4, requests, "each request covers %d ids", dashboard.JobsScanIDs)
}

func TestJobDetailActionsAndBulk(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	failed := b.failedJob(t, "q1", "boom")

	var d dashboard.JobDetail
	require.Equal(t, http.StatusOK, b.do(t, req{path: fmt.Sprintf("/api/jobs/%d", failed)}, &d).StatusCode)
	require.Equal(t, queue.StateFailed, d.Job.State)
	require.NotEmpty(t, d.Job.Errors)
	require.Contains(t, d.Job.Errors[0].Error, "boom")
	kinds := []string{}
	for _, e := range d.Timeline {
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, "created", kinds[0])
	require.Contains(t, kinds, "error")
	require.Equal(t, "finished", kinds[len(kinds)-1])

	require.Equal(t, http.StatusNotFound, b.do(t, req{path: "/api/jobs/999999999"}, nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{path: "/api/jobs/abc"}, nil).StatusCode)

	// Retry a failed job: it waits again.
	var res dashboard.ActionResult
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/retry", failed)}, &res).StatusCode)
	j, err := b.client.Job(ctx, failed)
	require.NoError(t, err)
	require.Equal(t, queue.StateAvailable, j.State)
	// Retrying it again is a conflict.
	require.Equal(t, http.StatusConflict, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/retry", failed)}, nil).StatusCode)
	// Revoke it, then delete it.
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/revoke", failed)}, &res).StatusCode)
	require.Equal(t, queue.StateCancelled, res.Revoked.State)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/delete", failed)}, &res).StatusCode)
	_, err = b.client.Job(ctx, failed)
	require.ErrorIs(t, err, queue.ErrJobNotFound)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/jobs/1/explode"}, nil).StatusCode)

	// Bulk: each id gets its own outcome.
	a := b.enqueue(t, "t.a", `{}`, nil)
	c := b.enqueue(t, "t.c", `{}`, nil)
	var bulk dashboard.BulkResult
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/jobs/bulk", body: dashboard.BulkRequest{Action: "cancel", IDs: []int64{a, c, 999999999}}}, &bulk).StatusCode)
	require.Equal(t, 2, bulk.OK)
	require.Equal(t, 1, bulk.Failed)
	require.Contains(t, bulk.Results[2].Error, "no such job")
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/jobs/bulk", body: dashboard.BulkRequest{Action: "retry", IDs: []int64{a, c}}}, &bulk).StatusCode)
	require.Equal(t, 2, bulk.OK)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/jobs/bulk", body: dashboard.BulkRequest{Action: "delete", IDs: []int64{a, c}}}, &bulk).StatusCode)
	require.Equal(t, 2, bulk.OK)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/jobs/bulk", body: dashboard.BulkRequest{Action: "delete"}}, nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/jobs/bulk", body: map[string]any{"action": "delete", "ids": []int64{1}, "extra": 1}}, nil).StatusCode)
}

func TestJobDetailShowsItsWorkflow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res, err := workflow.Apply(ctx, b.client, workflow.Chain(
		workflow.Task(queue.Raw{Task: "wf.first"}, nil),
		workflow.Task(queue.Raw{Task: "wf.second"}, nil),
	))
	require.NoError(t, err)
	tree, err := workflow.Inspect(ctx, b.client, res.ID)
	require.NoError(t, err)
	second := tree.Steps[1].ID

	var d dashboard.JobDetail
	require.Equal(t, http.StatusOK, b.do(t, req{path: fmt.Sprintf("/api/jobs/%d", second)}, &d).StatusCode)
	require.Equal(t, "pending", d.Job.State)
	require.NotNil(t, d.Workflow)
	require.Equal(t, workflow.KindChain, d.Workflow.Kind)
	require.Len(t, d.Workflow.Steps, 2)
	require.Equal(t, "wf.first", d.Workflow.Steps[0].Task)
	require.Equal(t, second, d.Workflow.Steps[1].ID)

	// A job on its own has no workflow; pending jobs can be listed.
	alone := b.enqueue(t, "t.alone", `{}`, nil)
	d = dashboard.JobDetail{}
	require.Equal(t, http.StatusOK, b.do(t, req{path: fmt.Sprintf("/api/jobs/%d", alone)}, &d).StatusCode)
	require.Nil(t, d.Workflow)
	var p dashboard.JobsPage
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/jobs?state=pending"}, &p).StatusCode)
	require.Len(t, p.Jobs, 1)
	require.Equal(t, second, p.Jobs[0].ID)
}

func TestSeriesCountsFinishedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.enqueue(t, worker.TaskNoop, `{}`, &queue.Options{Queue: "s"})
	b.enqueue(t, worker.TaskNoop, `{}`, &queue.Options{Queue: "s"})
	b.failedJob(t, "s", "x")
	var s dashboard.Series
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/series?range=5m"}, &s).StatusCode)
	require.Len(t, s.Points, 61, "5 minutes of 5-second buckets, the last one filling")
	var ok, failed int64
	for _, p := range s.Points {
		ok += p.Succeeded
		failed += p.Failed
	}
	require.Equal(t, int64(2), ok)
	require.Equal(t, int64(1), failed)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{path: "/api/series?range=7y"}, nil).StatusCode)

	// The second call reads the cached final buckets and the newest ones
	// again: a job finished since is counted.
	b.enqueue(t, worker.TaskNoop, `{}`, &queue.Options{Queue: "s"})
	b.runBurst(t, "s")
	for _, rg := range []string{"5m", "24h"} {
		s = dashboard.Series{}
		require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/series?range=" + rg}, &s).StatusCode)
		ok = 0
		for _, p := range s.Points {
			ok += p.Succeeded
		}
		require.Equal(t, int64(3), ok, rg)
	}
}

func TestQueueActions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.enqueue(t, "t", `{}`, &queue.Options{Queue: "work"})
	b.enqueue(t, "t", `{}`, &queue.Options{Queue: "work"})

	var res dashboard.QueueActionResult
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/queues/work/pause"}, &res).StatusCode)
	var qs dashboard.QueuesPage
	b.do(t, req{path: "/api/queues"}, &qs)
	require.True(t, qs.Queues[0].Paused)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/queues/work/resume"}, &res).StatusCode)

	// Purge needs the queue's name as confirmation.
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/queues/work/purge"}, nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/queues/work/purge", body: dashboard.PurgeRequest{Confirm: "wrok"}}, nil).StatusCode)
	n, err := b.client.CountWaiting(ctx, "work")
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/queues/work/purge", body: dashboard.PurgeRequest{Confirm: "work"}}, &res).StatusCode)
	require.Equal(t, int64(2), *res.Deleted)

	// Settings replace the queue's defaults.
	body := map[string]any{"priority": 5, "max_retries": 7, "time_limit_ms": 60000}
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/queues/work/settings", body: body}, &res).StatusCode)
	var raw struct {
		Queues []struct {
			Defaults map[string]int64 `json:"defaults"`
		} `json:"queues"`
	}
	b.do(t, req{path: "/api/queues"}, &raw)
	require.Equal(t, map[string]int64{"priority": 5, "max_retries": 7, "time_limit_ms": 60000}, raw.Queues[0].Defaults)
	infos, err := b.client.ListQueues(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Minute, infos[0].Defaults.TimeLimit)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/queues/work/settings", body: map[string]any{"priority": 12}}, nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/queues/work/settings", body: map[string]any{"time_limit_ms": -1}}, nil).StatusCode)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/queues/bad%20name/pause"}, nil).StatusCode)
}

func TestPeriodicActions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	pc, err := periodic.NewClient(b.client)
	require.NoError(t, err)
	require.NoError(t, pc.Add(ctx, periodic.Entry{Name: "nightly", Schedule: "0 3 * * *", Args: queue.Raw{Task: "reports.nightly"}}))

	var p dashboard.PeriodicPage
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/periodic"}, &p).StatusCode)
	require.Len(t, p.Tasks, 1)
	require.True(t, p.Tasks[0].Enabled)

	var res dashboard.PeriodicActionResult
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/periodic/nightly/disable"}, &res).StatusCode)
	b.do(t, req{path: "/api/periodic"}, &p)
	require.False(t, p.Tasks[0].Enabled)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/periodic/nightly/enable"}, &res).StatusCode)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/periodic/nightly/run"}, &res).StatusCode)
	require.NotZero(t, res.JobID)
	j, err := b.client.Job(ctx, res.JobID)
	require.NoError(t, err)
	require.Equal(t, "reports.nightly", j.Task)
	require.Equal(t, http.StatusNotFound, b.do(t, req{method: "POST", path: "/api/periodic/nope/run"}, nil).StatusCode)
}

func TestWorkersPageAndRemoteControl(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(b.db.Pool, reg, &worker.Config{Schema: b.db.Schema, Queues: []string{"default"}, Concurrency: 2, Logger: quietLogger()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	sleeping := b.enqueue(t, worker.TaskSleep, `{"seconds": 60}`, nil)

	// The worker registers itself and claims the job.
	var page dashboard.WorkersPage
	require.Eventually(t, func() bool {
		page = dashboard.WorkersPage{}
		b.do(t, req{path: "/api/workers"}, &page)
		return len(page.Workers) == 1 && len(page.Workers[0].ActiveJobs) == 1
	}, 20*time.Second, 50*time.Millisecond)
	wk := page.Workers[0]
	require.Equal(t, w.ID(), wk.ID)
	require.Equal(t, "alive", wk.Status)
	require.Equal(t, sleeping, wk.ActiveJobs[0].ID)
	require.Equal(t, 2, wk.Concurrency)

	var ans dashboard.ControlAnswer
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/workers/" + w.ID() + "/pool-size", body: dashboard.PoolSizeRequest{Concurrency: 5}}, &ans).StatusCode)
	require.True(t, ans.Replied)
	require.True(t, ans.Reply.OK, ans.Reply.Error)
	b.do(t, req{path: "/api/workers"}, &page)
	require.Equal(t, 5, page.Workers[0].Concurrency)
	require.Equal(t, http.StatusBadRequest, b.do(t, req{method: "POST", path: "/api/workers/" + w.ID() + "/pool-size", body: dashboard.PoolSizeRequest{}}, nil).StatusCode)
	require.Equal(t, http.StatusGatewayTimeout, b.do(t, req{method: "POST", path: "/api/workers/nobody/shutdown"}, nil).StatusCode)

	// Revoke the running job so that shutdown does not wait for it.
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/revoke", sleeping)}, nil).StatusCode)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: "/api/workers/" + w.ID() + "/shutdown"}, &ans).StatusCode)
	require.True(t, ans.Replied)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not shut down")
	}
	// A stopped worker that finished jobs lately is listed as gone.
	require.Eventually(t, func() bool {
		page = dashboard.WorkersPage{}
		b.do(t, req{path: "/api/workers"}, &page)
		return len(page.Workers) == 1 && page.Workers[0].Status == "gone"
	}, 10*time.Second, 50*time.Millisecond)
}

// TestEventsStreamLiveOverview reads the server-sent events and sees a
// count change after an enqueue.
func TestEventsStreamLiveOverview(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/api/events", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	events := make(chan dashboard.Overview)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && event == "overview" {
				var o dashboard.Overview
				if json.Unmarshal([]byte(v), &o) == nil {
					select {
					case events <- o:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	next := func() dashboard.Overview {
		select {
		case o := <-events:
			return o
		case <-ctx.Done():
			t.Fatal("no overview event")
			return dashboard.Overview{}
		}
	}
	require.Empty(t, next().Queues)
	b.enqueue(t, "live.task", `{}`, &queue.Options{Queue: "live"})
	for {
		o := next()
		if len(o.Queues) == 1 && o.Queues[0].Counts[queue.StateAvailable] == 1 {
			break
		}
	}
}
