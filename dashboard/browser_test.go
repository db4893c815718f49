package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// findChromium returns the path of a Chromium or Chrome binary. Without
// one the browser test is skipped, except in CI (CI set), where it must
// run: .ci/run installs Debian's chromium.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PGQ_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but no chromium was found: install Debian's chromium package (.ci/run does)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium); set CI=true to make this a failure")
	return ""
}

// browser is a headless Chromium for one test. It records the JavaScript
// dialogs (alert, confirm) pages open, accepting them, and the exceptions
// they throw.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	dialogs []string
	errors  []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := findChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser; it must have no timeout of its own.
	require.NoError(t, chromedp.Do(ctx), "start chromium at %s", path)
	b := &browser{ctx: ctx}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() {
				b.mu.Lock()
				if len(b.errors) < 10 {
					b.errors = append(b.errors, m.String())
				}
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// run runs steps, each group bounded by a minute.
func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		// Say what the page showed.
		dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer dcancel()
		text, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		b.mu.Lock()
		t.Logf("page at failure:\n%s\nexceptions: %q", text, b.errors)
		b.mu.Unlock()
		_ = chromedp.Do(dctx, screenshot(t, "failure"))
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

func (b *browser) text(t *testing.T, css string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(css)))
	require.NoError(t, err, css)
	return v
}

func (b *browser) alerts() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, d := range b.dialogs {
		if strings.HasPrefix(d, "alert") {
			out = append(out, d)
		}
	}
	return out
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))(ctx, t)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("wait for %s: %w", expr, err)
		}
		return chromedp.Void{}, nil
	}
}

func visible(css string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(css))
}
func click(css string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(css)) }

// screenshot saves the page as <name>.png in the test's artifact
// directory (go test -artifacts keeps it; see docs/dashboard.md).
func screenshot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg) // quality 100 gives PNG, less gives JPEG
		if err != nil {
			return err
		}
		p := filepath.Join(t.ArtifactDir(), name+".png")
		t.Logf("screenshot: %s", p)
		return os.WriteFile(p, png, 0o644)
	})
}

// recordCSPViolations makes every page the browser opens collect the
// Content-Security-Policy violations it reports in window.__csp.
func recordCSPViolations() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`})
		return err
	})
}

func darkMode() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	})
}

// TestBrowser drives the dashboard in a real headless Chromium: live
// counts over server-sent events, a job whose args hold markup shown as
// text, retry of a failed job that then succeeds, and pausing a queue
// from the page, which stops the worker from claiming its jobs.
func TestBrowser(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// After setup: cleanups run last first, so the browser, whose event
	// stream would hold the server's Close, goes first.
	br := newBrowser(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A worker on two queues, with a task that fails the first time it
	// runs and succeeds afterwards.
	var flakyRuns atomic.Int32
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	reg.HandleFunc("flaky.once", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		if flakyRuns.Add(1) == 1 {
			return nil, worker.Permanent(errors.New("first run fails on purpose"))
		}
		return map[string]string{"ok": "second time lucky"}, nil
	}, nil)
	w, err := worker.New(b.db.Pool, reg, &worker.Config{Schema: b.db.Schema, Queues: []string{"work", "pausable"}, Logger: quietLogger()})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitState := func(id int64, state string) {
		t.Helper()
		require.Eventually(t, func() bool {
			j, err := b.client.Job(context.Background(), id)
			return err == nil && j.State == state
		}, 30*time.Second, 20*time.Millisecond, "job %d never became %s", id, state)
	}

	// 1. The overview shows a queue's count, and updates it live.
	b.enqueue(t, "live.task", `{}`, &queue.Options{Queue: "live", Countdown: time.Hour})
	cell := `document.querySelector('td[data-queue="live"][data-state="scheduled"]')`
	br.run(t, "open the overview",
		recordCSPViolations(),
		chromedp.Navigate(b.srv.URL+"/"),
		waitJS(cell+` && `+cell+`.textContent === "1"`),
		waitJS(`document.getElementById("live").textContent === "live"`),
	)
	b.enqueue(t, "live.task", `{}`, &queue.Options{Queue: "live", Countdown: time.Hour})
	br.run(t, "see the count change without a reload",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.__notReloaded = true`)(ctx, tg)
			return err
		}),
		waitJS(cell+`.textContent === "2"`),
		waitJS(`window.__notReloaded === true`),
	)

	// 2. Markup in args, errors and task names is shown as text.
	payload := `<script>window.__pwned = 1; alert("xss-script")</script><img src=x onerror="window.__pwned = 2; alert('xss-img')">`
	args, _ := json.Marshal(map[string]string{"html": payload})
	xss := b.enqueue(t, worker.TaskFail, string(mustJSON(t, map[string]any{"message": payload, "permanent": true})), &queue.Options{Queue: "work"})
	waitState(xss, queue.StateFailed)
	shown := b.enqueue(t, "xss.args", string(args), &queue.Options{Queue: "elsewhere"})
	injectedJS := `document.querySelectorAll('main script, main img').length`
	br.run(t, "open the job with markup in its args",
		chromedp.Navigate(fmt.Sprintf("%s/#/jobs/%d", b.srv.URL, shown)),
		visible(`#job-args`),
	)
	argsText := br.text(t, `#job-args`)
	injected := eval[int](t, br, injectedJS)
	require.Contains(t, argsText, `<script>window.__pwned = 1; alert(`, "the args are shown as text")
	require.Contains(t, argsText, `<img src=x onerror=`)
	require.Zero(t, injected, "no element was made from the args")
	br.run(t, "open the failed job with markup in its error",
		chromedp.Navigate(fmt.Sprintf("%s/#/jobs/%d", b.srv.URL, xss)),
		visible(`pre.err-msg`),
	)
	errText := br.text(t, `pre.err-msg`)
	injected = eval[int](t, br, injectedJS)
	require.Contains(t, errText, "<script>")
	require.Zero(t, injected)
	br.run(t, "the jobs list shows the args preview as text",
		chromedp.Navigate(b.srv.URL+"/#/jobs"),
		waitJS(`document.querySelectorAll('#jobs-body tr[data-id]').length >= 2`),
		screenshot(t, "jobs"),
	)
	require.Zero(t, eval[int](t, br, injectedJS))
	require.False(t, eval[bool](t, br, `window.__pwned !== undefined`), "an injected script ran")
	require.Empty(t, br.alerts(), "an injected script opened an alert")

	// 3. A failed job: press retry on its page and see it succeed.
	flaky := b.enqueue(t, "flaky.once", `{"n": 1}`, &queue.Options{Queue: "work"})
	waitState(flaky, queue.StateFailed)
	br.run(t, "retry the failed job from its page",
		chromedp.Navigate(fmt.Sprintf("%s/#/jobs/%d", b.srv.URL, flaky)),
		waitJS(`document.getElementById("job-state") && document.getElementById("job-state").textContent === "failed"`),
		screenshot(t, "job-failed"),
		click(`#action-retry`),
		waitJS(`document.getElementById("job-state") && document.getElementById("job-state").textContent === "succeeded"`),
		waitJS(`document.getElementById("job-result") && document.getElementById("job-result").textContent.includes("second time lucky")`),
		screenshot(t, "job-succeeded"),
	)
	require.Equal(t, int32(2), flakyRuns.Load())

	// 4. Pause a queue from the page: the worker stops claiming its jobs.
	b.enqueue(t, worker.TaskNoop, `{}`, &queue.Options{Queue: "pausable"}) // makes the queue appear
	require.Eventually(t, func() bool {
		n, err := b.client.CountWaiting(context.Background(), "pausable")
		return err == nil && n == 0
	}, 30*time.Second, 20*time.Millisecond)
	br.run(t, "pause the queue from the queues page",
		chromedp.Navigate(b.srv.URL+"/#/queues"),
		visible(`tr[data-queue="pausable"] button[data-action="pause"]`),
		click(`tr[data-queue="pausable"] button[data-action="pause"]`),
		waitJS(`document.querySelector('tr[data-queue="pausable"] button[data-action="resume"]') !== null`),
		screenshot(t, "queues"),
	)
	held := b.enqueue(t, worker.TaskNoop, `{}`, &queue.Options{Queue: "pausable"})
	// A job enqueued after it on the other queue is claimed and run: the
	// worker has claimed since, and skipped the paused queue.
	after := b.enqueue(t, worker.TaskNoop, `{}`, &queue.Options{Queue: "work"})
	waitState(after, queue.StateSucceeded)
	j, err := b.client.Job(context.Background(), held)
	require.NoError(t, err)
	require.Equal(t, queue.StateAvailable, j.State, "the worker claimed a job of a paused queue")
	br.run(t, "resume the queue from the page",
		click(`tr[data-queue="pausable"] button[data-action="resume"]`),
		waitJS(`document.querySelector('tr[data-queue="pausable"] button[data-action="pause"]') !== null`),
	)
	waitState(held, queue.StateSucceeded)

	// 5. The overview's charts are drawn by uPlot, served by the dashboard
	// itself under its Content-Security-Policy, in the colours of the theme
	// the toggle picks. Then screenshots of the other pages, one in dark mode.
	canvas := `document.querySelector('#chart-throughput .uplot canvas')`
	// The colour of the legend's mark for succeeded/s, the first series.
	succeededColor := `(() => { const m = document.querySelectorAll('#chart-throughput .u-marker')[1]; return m ? getComputedStyle(m).borderTopColor : ""; })()`
	br.run(t, "overview charts",
		chromedp.Navigate(b.srv.URL+"/#/"),
		waitJS(`document.querySelectorAll('#queues tbody tr').length >= 3`),
		waitJS(`typeof uPlot === "function" && document.querySelectorAll('#charts .uplot').length === 3`),
		waitJS(canvas+` !== null && `+canvas+`.width > 0 && `+canvas+`.height > 0 && `+canvas+`.getBoundingClientRect().width > 0 && `+canvas+`.getBoundingClientRect().height > 0`),
		waitJS(succeededColor+` === "rgb(31, 138, 76)"`), // --ok in the light theme
		screenshot(t, "overview"),
		click(`#theme`),                                   // auto → dark
		waitJS(succeededColor+` === "rgb(76, 196, 130)"`), // --ok in the dark theme
		screenshot(t, "overview-dark-toggle"),
		click(`#theme`), // dark → light
		waitJS(succeededColor+` === "rgb(31, 138, 76)"`),
		click(`#theme`), // light → auto
		waitJS(`document.documentElement.getAttribute('data-theme') === null`),
	)
	require.Empty(t, eval[[]string](t, br, `window.__csp || ["no CSP recorder"]`), "Content-Security-Policy violations")
	br.run(t, "workers and periodic pages, the overview in dark mode, a phone",
		chromedp.Navigate(b.srv.URL+"/#/workers"),
		waitJS(`document.querySelector('#workers tr[data-worker]') !== null`),
		screenshot(t, "workers"),
		chromedp.Navigate(b.srv.URL+"/#/periodic"),
		waitJS(`document.querySelector('main .card') !== null`),
		screenshot(t, "periodic"),
		darkMode(),
		chromedp.Navigate(b.srv.URL+"/#/"),
		waitJS(`document.querySelectorAll('#queues tbody tr').length >= 3`),
		waitJS(succeededColor+` === "rgb(76, 196, 130)"`), // auto follows the system's dark setting
		screenshot(t, "overview-dark"),
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(fmt.Sprintf("%s/#/jobs/%d", b.srv.URL, flaky)),
		visible(`#job-args`),
		screenshot(t, "job-phone-dark"),
		chromedp.Navigate(b.srv.URL+"/#/"),
		// On a phone the charts are as wide as the screen, no wider.
		waitJS(canvas+` !== null && `+canvas+`.getBoundingClientRect().width > 0 && document.getElementById('chart-throughput').getBoundingClientRect().right <= innerWidth`),
		screenshot(t, "overview-phone-dark"),
	)
	require.Empty(t, br.alerts())
	br.mu.Lock()
	defer br.mu.Unlock()
	require.Empty(t, br.errors, "the pages threw JavaScript exceptions")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
