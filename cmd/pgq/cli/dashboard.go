package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/dashboard"
	"github.com/pgq/pgq/metrics"
)

// Environment variables read by `pgq dashboard` when the matching flag is
// not given.
const (
	EnvDashboardToken     = "PGQ_DASHBOARD_TOKEN"
	EnvDashboardBasicAuth = "PGQ_DASHBOARD_BASIC_AUTH"
)

// DashboardAddrDefault is where `pgq dashboard` listens by default: this
// machine only.
const DashboardAddrDefault = "127.0.0.1:5555"

// dashboardShutdownTimeout bounds the wait for requests in flight when the
// dashboard stops.
const dashboardShutdownTimeout = 5 * time.Second

func newDashboardCmd(a *app) *cobra.Command {
	var (
		addr, token, basic  string
		readOnly, noMetrics bool
		allowedHosts        []string
		refresh             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard and its JSON API",
		Long: `Serve the web dashboard (queues, jobs, workers, periodic tasks, live charts)
and the JSON API behind it (docs/dashboard.md).

It listens on ` + DashboardAddrDefault + ` by default. Any other address needs
authentication: --token (or $` + EnvDashboardToken + `), which scripts send as
"Authorization: Bearer TOKEN" and people type once on the login page, or
--basic-auth USER:PASS (or $` + EnvDashboardBasicAuth + `). Without it the command
refuses to start. --read-only rejects every action. Prometheus metrics are
served at /metrics behind the same authentication (--no-metrics turns them off).`,
		Example: `  pgq dashboard
  pgq dashboard --read-only
  PGQ_DASHBOARD_TOKEN=$(openssl rand -hex 24) pgq dashboard --addr 0.0.0.0:5555
  pgq dashboard --addr :8080 --basic-auth admin:s3cret`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := &dashboard.Options{ReadOnly: readOnly, AllowedHosts: allowedHosts, RefreshInterval: refresh, Logger: a.logger()}
			if token == "" {
				token = a.getenv(EnvDashboardToken)
			}
			opts.Token = strings.TrimSpace(token)
			if basic == "" {
				basic = a.getenv(EnvDashboardBasicAuth)
			}
			if basic != "" {
				user, pass, ok := strings.Cut(basic, ":")
				if !ok || user == "" || pass == "" {
					return usageErrorf(cmd, "--basic-auth (or $%s) must be USER:PASSWORD", EnvDashboardBasicAuth)
				}
				opts.BasicAuthUser, opts.BasicAuthPassword = user, pass
			}
			if refresh < 0 {
				return usageErrorf(cmd, "--refresh cannot be negative")
			}
			if err := dashboard.CheckAddr(addr, opts); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			ctx := cmd.Context()
			s, err := a.openSized(ctx, 8)
			if err != nil {
				return err
			}
			defer s.Close()
			opts.Schema = s.schema
			if !noMetrics {
				if opts.Metrics, err = dashboardMetrics(s); err != nil {
					return err
				}
			}
			h, err := dashboard.New(s.pool, opts)
			if err != nil {
				return err
			}
			ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("dashboard: %w", err)
			}
			return serveDashboard(ctx, cmd, ln, h, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", DashboardAddrDefault, "address to listen on, host:port")
	f.StringVar(&token, "token", "", "require this token (default $"+EnvDashboardToken+")")
	f.StringVar(&basic, "basic-auth", "", "require these basic-auth credentials, USER:PASSWORD (default $"+EnvDashboardBasicAuth+")")
	f.BoolVar(&readOnly, "read-only", false, "reject every action (retry, revoke, pause, ...)")
	f.StringSliceVar(&allowedHosts, "allowed-host", nil, "without authentication, also answer requests for this Host name (behind your own authenticating proxy)")
	f.DurationVar(&refresh, "refresh", dashboard.RefreshIntervalDefault, "how often live pages get new figures")
	f.BoolVar(&noMetrics, "no-metrics", false, "do not serve Prometheus metrics at /metrics")
	return cmd
}

// dashboardMetrics is the Prometheus handler `pgq dashboard` serves at
// /metrics (behind the dashboard's authentication): the figures read from
// the tables at each scrape (package metrics).
func dashboardMetrics(s *session) (http.Handler, error) {
	c, err := metrics.NewCollector(s.pool, s.schema, nil)
	if err != nil {
		return nil, err
	}
	reg, err := metrics.NewRegistry(c)
	if err != nil {
		return nil, err
	}
	return metrics.Handler(reg), nil
}

func serveDashboard(ctx context.Context, cmd *cobra.Command, ln net.Listener, h http.Handler, opts *dashboard.Options) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: the live-update stream stays open. Requests
		// share the command's context, so that an interrupt also ends
		// the streams and Shutdown need not wait for them.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	mode := ""
	switch {
	case opts.Token != "" && opts.BasicAuthUser != "":
		mode = " (token or basic auth)"
	case opts.Token != "":
		mode = " (token required)"
	case opts.BasicAuthUser != "":
		mode = " (basic auth required)"
	}
	if opts.ReadOnly {
		mode += " read-only"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "pgq dashboard: serving on http://%s/%s\n", ln.Addr(), mode)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), dashboardShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("dashboard: shut down: %w", err)
	}
	_ = srv.Close()
	<-errc
	fmt.Fprintln(cmd.OutOrStdout(), "pgq dashboard: stopped")
	return nil
}
