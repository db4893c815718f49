// Package dashboard serves pgq's web dashboard and its JSON API: queues
// with live counts and charts, jobs with filters, search and bulk actions,
// a job's detail with its error history and workflow relatives, workers
// with remote control, queue settings and periodic tasks.
//
// New returns an http.Handler to mount in a program's own server; the
// `pgq dashboard` command serves the same handler. Every page is built
// from the JSON API under /api/, which scripts can call directly; see
// docs/dashboard.md for the endpoints and the security model:
//
//   - Without credentials (Options.Token, Options.BasicAuthUser) the
//     handler answers only requests addressed to a loopback host name, and
//     `pgq dashboard` refuses to listen anywhere but on loopback.
//   - Mutations are POST. A request from a browser must be same-origin
//     (Origin and Sec-Fetch-Site are checked) and carry the CSRF token of
//     its session in the X-Pgq-Csrf header (double-submit cookie); a script
//     authenticating with "Authorization: Bearer" needs no CSRF token.
//   - Options.ReadOnly rejects every mutation.
//   - The pages build their DOM with textContent only and are served with a
//     Content-Security-Policy that forbids inline scripts, so a job whose
//     arguments contain markup shows it as text.
//
// Live updates use server-sent events (/api/events). One goroutine
// computes the overview per refresh interval for all listeners; it runs
// only while at least one page listens.
package dashboard
