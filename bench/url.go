package main

import (
	"log/slog"
	"net/url"
	"strings"
)

var discardLogger = slog.New(slog.DiscardHandler)

// withDatabase returns the URL u pointing at database name instead.
// Keyword/value strings ("host=… dbname=…") get a dbname appended, which
// overrides an earlier one.
func withDatabase(u, name string) string {
	if p, err := url.Parse(u); err == nil && (p.Scheme == "postgres" || p.Scheme == "postgresql") {
		p.Path = "/" + name
		return p.String()
	}
	return strings.TrimSpace(u) + " dbname=" + name
}
