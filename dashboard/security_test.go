package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/dashboard"
	"github.com/pgq/pgq/queue"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestCheckAddrRefusesPublicAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	token := &dashboard.Options{Token: "a-long-enough-secret"}
	basic := &dashboard.Options{BasicAuthUser: "u", BasicAuthPassword: "p"}
	cases := []struct {
		addr string
		opts *dashboard.Options
		ok   bool
	}{
		{"127.0.0.1:5555", nil, true},
		{"localhost:5555", nil, true},
		{"[::1]:5555", nil, true},
		{"127.0.0.2:80", nil, true},
		{"0.0.0.0:5555", nil, false},
		{":5555", nil, false},
		{"192.168.1.10:5555", &dashboard.Options{}, false},
		{"example.com:5555", nil, false},
		{"0.0.0.0:5555", token, true},
		{":5555", basic, true},
		{"no-port", nil, false},
	}
	for _, c := range cases {
		err := dashboard.CheckAddr(c.addr, c.opts)
		if c.ok {
			require.NoError(t, err, c.addr)
		} else {
			require.Error(t, err, c.addr)
		}
	}
	err := dashboard.CheckAddr("0.0.0.0:5555", nil)
	require.ErrorContains(t, err, "without authentication")
}

func TestOptionsAreChecked(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, err := dashboard.New(nil, nil)
	require.Error(t, err)
	_, err = dashboard.New(b.db.Pool, &dashboard.Options{BasicAuthUser: "u"})
	require.ErrorContains(t, err, "BasicAuthPassword")
	_, err = dashboard.New(b.db.Pool, &dashboard.Options{Schema: "Bad Schema"})
	require.Error(t, err)
}

func TestWithoutAuthOnlyLoopbackHostsAreServed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// DNS rebinding: a page of evil.example whose name now resolves to
	// 127.0.0.1 sends Host: evil.example.
	require.Equal(t, http.StatusForbidden, b.do(t, req{path: "/api/overview", header: map[string]string{"Host": "evil.example:5555"}}, nil).StatusCode)
	require.Equal(t, http.StatusForbidden, b.do(t, req{path: "/", header: map[string]string{"Host": "evil.example"}}, nil).StatusCode)
	for _, host := range []string{"localhost:5555", "127.0.0.1", "[::1]:80", "app.localhost"} {
		require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/overview", header: map[string]string{"Host": host}}, nil).StatusCode, host)
	}
	allowed := setup(t, &dashboard.Options{AllowedHosts: []string{"jobs.internal"}})
	require.Equal(t, http.StatusOK, allowed.do(t, req{path: "/api/overview", header: map[string]string{"Host": "jobs.internal:8080"}}, nil).StatusCode)
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-for-tests"
	b := setup(t, &dashboard.Options{Token: token})
	bearer := map[string]string{"Authorization": "Bearer " + token}

	require.Equal(t, http.StatusUnauthorized, b.do(t, req{path: "/api/overview"}, nil).StatusCode)
	require.Equal(t, http.StatusUnauthorized, b.do(t, req{path: "/api/overview", header: map[string]string{"Authorization": "Bearer wrong"}}, nil).StatusCode)
	require.Equal(t, http.StatusUnauthorized, b.do(t, req{path: "/api/events"}, nil).StatusCode)
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/overview", header: bearer}, nil).StatusCode)
	// With credentials, any Host is served (the check is the token).
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/overview", header: map[string]string{"Authorization": "Bearer " + token, "Host": "jobs.example.com"}}, nil).StatusCode)

	// A browser is sent to the login page; the static files and the
	// login page need no session.
	res := b.do(t, req{path: "/"}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "login", res.Header.Get("Location"))
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/login"}, nil).StatusCode)
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/static/app.js"}, nil).StatusCode)

	// Logging in with the wrong token fails; the right one gives a
	// session cookie that is not the token.
	form := func(tok string) *http.Response {
		hr, err := http.NewRequest("POST", b.srv.URL+"/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		require.NoError(t, err)
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		hr.Header.Set("Origin", b.srv.URL)
		hr.Header.Set("Sec-Fetch-Site", "same-origin")
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.Do(hr)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res = form("wrong")
	require.Equal(t, "login?failed=1", res.Header.Get("Location"))
	require.Empty(t, res.Cookies())
	res = form(token)
	require.Equal(t, "./", res.Header.Get("Location"))
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == dashboard.SessionCookie {
			session = c
		}
	}
	require.NotNil(t, session)
	require.NotContains(t, session.Value, token)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, session.SameSite)
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/overview", cookies: []*http.Cookie{session}}, nil).StatusCode)
	require.Equal(t, http.StatusUnauthorized, b.do(t, req{path: "/api/overview", cookies: []*http.Cookie{{Name: dashboard.SessionCookie, Value: "forged"}}}, nil).StatusCode)

	// ?token= in a link logs in and leaves the token out of the address.
	res = b.do(t, req{path: "/?token=" + url.QueryEscape(token)}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.NotContains(t, res.Header.Get("Location"), token)
	require.NotEmpty(t, res.Cookies())
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, &dashboard.Options{BasicAuthUser: "admin", BasicAuthPassword: "pa55word"})
	res := b.do(t, req{path: "/"}, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, res.Header.Get("WWW-Authenticate"), "Basic")
	wrong := "Basic " + basic("admin", "nope")
	require.Equal(t, http.StatusUnauthorized, b.do(t, req{path: "/api/overview", header: map[string]string{"Authorization": wrong}}, nil).StatusCode)
	right := map[string]string{"Authorization": "Basic " + basic("admin", "pa55word")}
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/api/overview", header: right}, nil).StatusCode)
	require.Equal(t, http.StatusOK, b.do(t, req{path: "/", header: right}, nil).StatusCode)
	// A script with basic auth can act (no browser headers, no CSRF token).
	id := b.enqueue(t, "t", `{}`, nil)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/revoke", id), header: right}, nil).StatusCode)
}

func basic(u, p string) string {
	hr, _ := http.NewRequest("GET", "http://x/", nil)
	hr.SetBasicAuth(u, p)
	return strings.TrimPrefix(hr.Header.Get("Authorization"), "Basic ")
}

func TestReadOnlyRejectsMutations(t *testing.T) {
	t.Parallel()
	b := setup(t, &dashboard.Options{ReadOnly: true})
	failed := b.failedJob(t, "ro", "x")
	var s struct {
		ReadOnly bool `json:"read_only"`
	}
	b.do(t, req{path: "/api/session"}, &s)
	require.True(t, s.ReadOnly)
	for _, path := range []string{
		fmt.Sprintf("/api/jobs/%d/retry", failed), fmt.Sprintf("/api/jobs/%d/delete", failed),
		"/api/jobs/bulk", "/api/queues/ro/pause", "/api/queues/ro/purge", "/api/periodic/x/run", "/api/workers/w/shutdown",
	} {
		require.Equal(t, http.StatusForbidden, b.do(t, req{method: "POST", path: path, body: map[string]any{}}, nil).StatusCode, path)
	}
	j, err := b.client.Job(context.Background(), failed)
	require.NoError(t, err)
	require.Equal(t, queue.StateFailed, j.State, "nothing changed")
	require.Equal(t, http.StatusOK, b.do(t, req{path: fmt.Sprintf("/api/jobs/%d", failed)}, nil).StatusCode, "reads still work")
}

func TestMutationsNeedPOSTAndCSRFProtection(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	id := b.failedJob(t, "csrf", "x")
	retry := fmt.Sprintf("/api/jobs/%d/retry", id)

	// A GET never mutates.
	require.Equal(t, http.StatusMethodNotAllowed, b.do(t, req{path: retry}, nil).StatusCode)

	// The browser's session: the page sets the CSRF cookie.
	var s struct {
		CSRFToken string `json:"csrf_token"`
	}
	res := b.do(t, req{path: "/api/session"}, &s)
	var csrf *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == dashboard.CSRFCookie {
			csrf = c
		}
	}
	require.NotNil(t, csrf)
	require.Equal(t, csrf.Value, s.CSRFToken)
	cookies := []*http.Cookie{csrf}

	refused := []struct {
		name   string
		header map[string]string
		cookie bool
	}{
		{"cross-site form post", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, true},
		{"cross-origin with a stolen header value", map[string]string{"Origin": "https://evil.example", dashboard.CSRFHeader: csrf.Value}, true},
		{"same-site sibling", map[string]string{"Sec-Fetch-Site": "same-site", dashboard.CSRFHeader: csrf.Value}, true},
		{"same origin without the header", map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin"}, true},
		{"same origin with a wrong header", map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin", dashboard.CSRFHeader: strings.Repeat("0", 64)}, true},
		{"header without the cookie", map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin", dashboard.CSRFHeader: csrf.Value}, false},
	}
	for _, c := range refused {
		r := req{method: "POST", path: retry, header: c.header}
		if c.cookie {
			r.cookies = cookies
		}
		require.Equal(t, http.StatusForbidden, b.do(t, r, nil).StatusCode, c.name)
	}
	j, err := b.client.Job(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateFailed, j.State, "no refused request changed the job")

	// The page's own request: same origin, cookie and header agree.
	ok := req{method: "POST", path: retry, cookies: cookies,
		header: map[string]string{"Origin": b.srv.URL, "Sec-Fetch-Site": "same-origin", dashboard.CSRFHeader: csrf.Value}}
	require.Equal(t, http.StatusOK, b.do(t, ok, nil).StatusCode)

	// A script on this machine (no browser headers, no cookie) may act
	// without a token: no other site can make a browser send such a
	// request.
	_, err = b.client.Revoke(context.Background(), id, false)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: retry}, nil).StatusCode)
}

func TestBearerTokenNeedsNoCSRFToken(t *testing.T) {
	t.Parallel()
	const token = "another-s3cret-token"
	b := setup(t, &dashboard.Options{Token: token})
	id := b.enqueue(t, "t", `{}`, nil)
	// A session cookie alone (a browser) is not enough to act ...
	session := &http.Cookie{Name: dashboard.SessionCookie, Value: sessionOf(t, b, token)}
	require.Equal(t, http.StatusForbidden, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/revoke", id), cookies: []*http.Cookie{session}}, nil).StatusCode)
	// ... the bearer token is.
	require.Equal(t, http.StatusOK, b.do(t, req{method: "POST", path: fmt.Sprintf("/api/jobs/%d/revoke", id), header: map[string]string{"Authorization": "Bearer " + token}}, nil).StatusCode)
}

func sessionOf(t *testing.T, b *bundle, token string) string {
	t.Helper()
	res := b.do(t, req{path: "/?token=" + url.QueryEscape(token)}, nil)
	for _, c := range res.Cookies() {
		if c.Name == dashboard.SessionCookie {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestPagesAndDataAreServedSafely(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	id := b.enqueue(t, "xss.task", `{"html": "<script>alert(1)</script><img src=x onerror=alert(2)>"}`, nil)

	res := b.do(t, req{path: "/"}, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	csp := res.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))

	// The API answers JSON, with markup characters escaped.
	hr, err := http.Get(fmt.Sprintf("%s/api/jobs/%d", b.srv.URL, id))
	require.NoError(t, err)
	defer hr.Body.Close()
	body, err := io.ReadAll(hr.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json; charset=utf-8", hr.Header.Get("Content-Type"))
	require.NotContains(t, string(body), "<script>")
	require.Contains(t, string(body), `\u003cscript\u003e`)

	// The page's script never parses data as HTML.
	js, err := http.Get(b.srv.URL + "/static/app.js")
	require.NoError(t, err)
	defer js.Body.Close()
	src, err := io.ReadAll(js.Body)
	require.NoError(t, err)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		require.NotContains(t, string(src), sink)
	}
}
