package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/periodic"
	"github.com/pgq/pgq/queue"
)

// RefreshIntervalDefault is how often the live overview is recomputed
// while at least one page listens to /api/events.
const RefreshIntervalDefault = 2 * time.Second

// Names of the cookies and header the dashboard uses.
const (
	// SessionCookie holds a browser's proof of the token after it logged
	// in with it (a hash of the token, never the token itself).
	SessionCookie = "pgq_session"
	// CSRFCookie holds the random value a browser must echo in CSRFHeader
	// on every mutating request (double-submit).
	CSRFCookie = "pgq_csrf"
	// CSRFHeader carries the value of CSRFCookie on mutating requests.
	CSRFHeader = "X-Pgq-Csrf"
)

//go:embed static
var staticFiles embed.FS

// Options configure the dashboard. A nil *Options means all defaults: the
// "pgq" schema, no authentication (so only loopback Host names are
// served), mutations allowed.
type Options struct {
	// Schema is where pgq's tables live; empty means "pgq".
	Schema string
	// Token, when set, is required: as "Authorization: Bearer <token>",
	// or, for a browser, entered once on the login page (or passed as
	// ?token= in the first URL), which sets a session cookie.
	Token string
	// BasicAuthUser and BasicAuthPassword, when set, are accepted as HTTP
	// basic-auth credentials. Both or neither must be set.
	BasicAuthUser     string
	BasicAuthPassword string
	// AllowedHosts are Host header names served when no credentials are
	// configured, besides the loopback names and addresses. Without
	// credentials the dashboard refuses other Host names, which defeats
	// DNS rebinding; a program that puts its own authentication in front
	// of the handler lists its host names here.
	AllowedHosts []string
	// ReadOnly rejects every mutating request (403).
	ReadOnly bool
	// Metrics, when set, is served at /metrics behind the same
	// authentication (for example a Prometheus handler).
	Metrics http.Handler
	// RefreshInterval is how often live pages get new figures; 0 means
	// RefreshIntervalDefault.
	RefreshInterval time.Duration
	// Logger receives errors of requests; nil means slog.Default().
	Logger *slog.Logger
}

// handler is the dashboard: an http.Handler with its routes, checks and
// the live-update hub.
type handler struct {
	opts     Options
	client   *queue.Client
	periodic *periodic.Client
	q        *db.Queries
	log      *slog.Logger
	mux      *http.ServeMux
	session  string // expected SessionCookie value; "" without a token
	cop      *http.CrossOriginProtection
	hub      *hub
	series   seriesCache
}

// New returns the dashboard and its JSON API as an http.Handler on pool.
// Mount it at the root of a server, or under a prefix with
// http.StripPrefix (its pages use relative URLs).
func New(pool *pgxpool.Pool, opts *Options) (http.Handler, error) {
	if pool == nil {
		return nil, errors.New("dashboard.New: pool is nil")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if (o.BasicAuthUser == "") != (o.BasicAuthPassword == "") {
		return nil, errors.New("Options.BasicAuthUser and Options.BasicAuthPassword must be set together")
	}
	if strings.Contains(o.BasicAuthUser, ":") {
		return nil, errors.New("Options.BasicAuthUser cannot contain ':'")
	}
	if o.RefreshInterval < 0 {
		return nil, errors.New("Options.RefreshInterval cannot be negative")
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = RefreshIntervalDefault
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	client, err := queue.NewClient(pool, &queue.Config{Schema: o.Schema})
	if err != nil {
		return nil, fmt.Errorf("dashboard.New: %w", err)
	}
	pc, err := periodic.NewClient(client)
	if err != nil {
		return nil, fmt.Errorf("dashboard.New: %w", err)
	}
	h := &handler{
		opts: o, client: client, periodic: pc, log: o.Logger,
		q:   db.New(schema.Wrap(client.Schema(), pool)),
		mux: http.NewServeMux(),
		cop: http.NewCrossOriginProtection(),
	}
	if o.Token != "" {
		h.session = sessionValue(o.Token)
	}
	// Rejections by the cross-origin check are answered in JSON like
	// every other API error.
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused (CSRF protection)")
	}))
	h.hub = newHub(h)
	h.routes()
	return h, nil
}

// authConfigured reports whether any credentials are required.
func (h *handler) authConfigured() bool {
	return h.opts.Token != "" || h.opts.BasicAuthUser != ""
}

func (h *handler) routes() {
	static, _ := fs.Sub(staticFiles, "static")
	files := http.FileServerFS(static)
	m := h.mux
	m.HandleFunc("GET /{$}", h.index)
	m.Handle("GET /static/", http.StripPrefix("/static/", files))
	m.HandleFunc("GET /login", h.loginPage)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.logout)

	m.HandleFunc("GET /api/session", h.apiSession)
	m.HandleFunc("GET /api/overview", h.apiOverview)
	m.HandleFunc("GET /api/series", h.apiSeries)
	m.HandleFunc("GET /api/events", h.apiEvents)
	m.HandleFunc("GET /api/jobs", h.apiJobs)
	m.HandleFunc("GET /api/jobs/{id}", h.apiJob)
	m.HandleFunc("POST /api/jobs/bulk", h.apiJobsBulk)
	m.HandleFunc("POST /api/jobs/{id}/{action}", h.apiJobAction)
	m.HandleFunc("GET /api/workers", h.apiWorkers)
	m.HandleFunc("POST /api/workers/{id}/{action}", h.apiWorkerAction)
	m.HandleFunc("GET /api/queues", h.apiQueues)
	m.HandleFunc("POST /api/queues/{name}/{action}", h.apiQueueAction)
	m.HandleFunc("GET /api/periodic", h.apiPeriodic)
	m.HandleFunc("POST /api/periodic/{name}/{action}", h.apiPeriodicAction)
	if h.opts.Metrics != nil {
		m.Handle("GET /metrics", h.opts.Metrics)
	}
}

// ServeHTTP applies, in order: security headers, the Host check (no
// credentials configured), authentication, then for mutating requests
// read-only mode and CSRF protection; then routes.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

	if !h.authConfigured() && !h.hostAllowed(r.Host) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("host %q refused: without credentials the dashboard only answers loopback names (set a token, basic auth or Options.AllowedHosts)", r.Host))
		return
	}
	isLogin := r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/")
	bearer := false
	if h.authConfigured() && !isLogin {
		ok, viaBearer := h.authenticate(w, r)
		if !ok {
			return
		}
		bearer = viaBearer
	}
	if !safeMethod(r.Method) {
		if h.opts.ReadOnly && r.URL.Path != "/login" && r.URL.Path != "/logout" {
			writeError(w, http.StatusForbidden, "the dashboard is read-only")
			return
		}
		if err := h.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross-origin request refused (CSRF protection): "+err.Error())
			return
		}
		if !bearer && fromBrowser(r) && r.URL.Path != "/login" && !h.csrfOK(r) {
			writeError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header (CSRF protection): reload the page")
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// fromBrowser reports whether a request looks like it came from a web
// browser, which may have been sent by another site: browsers send
// Origin on every POST and Sec-Fetch-Site with every request, and they
// attach cookies on their own. A script (curl) sends none of these.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Cookie") != ""
}

// csrfOK checks the double-submit token: the header must equal the
// cookie, which another site can neither read nor set.
func (h *handler) csrfOK(r *http.Request) bool {
	c, err := r.Cookie(CSRFCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	return subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

// hostAllowed reports whether the Host header names this machine's
// loopback interface or an allowed host.
func (h *handler) hostAllowed(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if IsLoopback(host) {
		return true
	}
	for _, a := range h.opts.AllowedHosts {
		if strings.EqualFold(a, host) || strings.EqualFold(a, hostport) {
			return true
		}
	}
	return false
}

// IsLoopback reports whether host (a name or an address, without port)
// means this machine only: "localhost", a name under .localhost, or a
// loopback address.
func IsLoopback(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckAddr returns an error when the dashboard with these options should
// not listen on addr (host:port): any address other than a loopback one
// (an empty host means every interface) requires a token or basic-auth
// credentials.
func CheckAddr(addr string, opts *Options) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w (use host:port, such as 127.0.0.1:5555)", addr, err)
	}
	if IsLoopback(host) {
		return nil
	}
	if opts != nil && (opts.Token != "" || opts.BasicAuthUser != "") {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("refusing to serve the dashboard on %s (%s) without authentication: set a token or basic-auth credentials, or listen on 127.0.0.1", addr, shown)
}

// authenticate checks the request's credentials; on failure it has
// answered. viaBearer is true when the request carried the token in its
// Authorization header (which a browser never adds on its own).
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (ok, viaBearer bool) {
	if h.opts.Token != "" {
		if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && equal(tok, h.opts.Token) {
			return true, true
		}
		if c, err := r.Cookie(SessionCookie); err == nil && equal(c.Value, h.session) {
			return true, false
		}
		// A link with ?token= logs a browser in and drops the token from
		// the address bar.
		if tok := r.URL.Query().Get("token"); tok != "" && r.Method == http.MethodGet && equal(tok, h.opts.Token) {
			h.setSession(w, r)
			q := r.URL.Query()
			q.Del("token")
			loc := "./"
			if base := path.Base(r.URL.Path); base != "/" && base != "." {
				loc = base
			}
			if len(q) > 0 {
				loc += "?" + q.Encode()
			}
			seeOther(w, loc)
			return false, false
		}
	}
	if h.opts.BasicAuthUser != "" {
		if u, p, found := r.BasicAuth(); found && equal(u, h.opts.BasicAuthUser) && equal(p, h.opts.BasicAuthPassword) {
			return true, false
		}
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" || h.opts.Token == "" {
		if h.opts.BasicAuthUser != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="pgq dashboard", charset="UTF-8"`)
		}
		writeError(w, http.StatusUnauthorized, "authentication required: send the dashboard token as 'Authorization: Bearer <token>' or basic-auth credentials")
		return false, false
	}
	seeOther(w, "login")
	return false, false
}

// seeOther redirects to loc, relative to the request's URL. Unlike
// http.Redirect it leaves a relative loc relative, so the dashboard works
// when mounted under a prefix with http.StripPrefix.
func seeOther(w http.ResponseWriter, loc string) {
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}

func equal(a, b string) bool {
	// Hashing first makes the comparison's time independent of lengths.
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// sessionValue is what the session cookie holds for a token: a hash, so
// that the cookie does not reveal the token.
func sessionValue(token string) string {
	s := sha256.Sum256([]byte("pgq dashboard session\x00" + token))
	return hex.EncodeToString(s[:])
}

func (h *handler) setSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: h.session, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// csrfToken returns the request's CSRF cookie value, setting a new one
// when it has none.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return v
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	csrfToken(w, r)
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, staticFiles, "static/index.html")
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.opts.Token == "" {
		seeOther(w, "./")
		return
	}
	http.ServeFileFS(w, r, staticFiles, "static/login.html")
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if h.opts.Token == "" {
		seeOther(w, "./")
		return
	}
	if !equal(r.PostFormValue("token"), h.opts.Token) {
		seeOther(w, "login?failed=1")
		return
	}
	h.setSession(w, r)
	seeOther(w, "./")
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	seeOther(w, "login")
}
