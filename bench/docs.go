package main

import (
	"fmt"
	"os"
	"strings"
)

// The side-by-side section of docs/performance.md lies between the outer
// markers; the harness rewrites only what lies between the table markers
// inside it, so that the prose around the table survives a new run.
const (
	markerBegin      = "<!-- bench-peers:begin -->"
	markerEnd        = "<!-- bench-peers:end -->"
	markerTableBegin = "<!-- bench-peers:table:begin -->"
	markerTableEnd   = "<!-- bench-peers:table:end -->"
)

// updateDocs writes report into the Markdown file at path.
func updateDocs(path, report string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceTable(string(b), report)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// replaceTable puts report between the table markers of doc. A document
// without the section gets one appended at its end.
func replaceTable(doc, report string) (string, error) {
	block := markerTableBegin + "\n" + strings.TrimRight(report, "\n") + "\n" + markerTableEnd
	if !strings.Contains(doc, markerBegin) {
		section := "## Side by side with River, Graphile Worker and pg-boss (issue #10)\n\n" + block + "\n"
		return strings.TrimRight(doc, "\n") + "\n\n" + markerBegin + "\n" + section + markerEnd + "\n", nil
	}
	begin := strings.Index(doc, markerBegin)
	end := strings.Index(doc, markerEnd)
	if end < begin {
		return "", fmt.Errorf("the marker %s is missing or comes before %s", markerEnd, markerBegin)
	}
	section := doc[begin:end]
	tb, te := strings.Index(section, markerTableBegin), strings.Index(section, markerTableEnd)
	switch {
	case tb < 0 && te < 0:
		section = strings.TrimRight(section, "\n") + "\n\n" + block + "\n"
	case tb < 0 || te < tb:
		return "", fmt.Errorf("the table markers %s and %s are not in order", markerTableBegin, markerTableEnd)
	default:
		section = section[:tb] + block + section[te+len(markerTableEnd):]
	}
	return doc[:begin] + section + doc[end:], nil
}
