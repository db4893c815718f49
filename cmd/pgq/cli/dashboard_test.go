package cli_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

func TestDashboardRefusesPublicAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:5555", ":5555", "192.0.2.1:80"} {
		r := execute(t, map[string]string{cli.EnvDatabaseURL: "postgres://unused@127.0.0.1:1/x"}, "dashboard", "--addr", addr)
		msg, code := r.report()
		require.Equal(t, cli.ExitUsage, code, addr)
		require.Contains(t, msg, "without authentication", addr)
	}
	r := execute(t, map[string]string{cli.EnvDashboardBasicAuth: "no-colon"}, "dashboard", "--addr", "0.0.0.0:5555")
	msg, code := r.report()
	require.Equal(t, cli.ExitUsage, code)
	require.Contains(t, msg, "USER:PASSWORD")
}

// TestDashboardServes runs `pgq dashboard` on a free loopback port with a
// token from the environment, and stops it with its context.
func TestDashboardServes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const token = "cli-test-token-123"
	pr, pw := io.Pipe()
	root := cli.New(&cli.Options{Getenv: func(k string) string {
		return map[string]string{cli.EnvDashboardToken: token}[k]
	}})
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"--database-url", b.db.URL, "--schema", b.db.Schema, "dashboard", "--addr", "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan(), "no output")
	first := lines.Text()
	require.Contains(t, first, "(token required)")
	url := strings.Fields(strings.TrimPrefix(first, "pgq dashboard: serving on "))[0]
	go func() { // keep the pipe drained
		for lines.Scan() {
		}
	}()

	get := func(path string, auth bool) int {
		req, err := http.NewRequest("GET", url+strings.TrimPrefix(path, "/"), nil)
		require.NoError(t, err)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, get("/api/overview", false))
	require.Equal(t, http.StatusOK, get("/api/overview", true))
	require.Equal(t, http.StatusUnauthorized, get("/metrics", false))
	require.Equal(t, http.StatusOK, get("/metrics", true))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("pgq dashboard did not stop")
	}
}
