package queuebench_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/queuebench"
)

func TestBarOnTerminal(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	bar := queuebench.NewTerminalBar(&b)
	bar.Begin("drain, pgq", 2000)
	bar.Progress(1000) // within 100 ms of the first draw: not redrawn
	bar.End(nil)
	bar.Begin("tx, pgq", 0)
	bar.End(errors.New("boom\nsecond line"))
	out := b.String()
	require.Contains(t, out, "\r\033[Kdrain, pgq  [..............................]   0%  0/2,000")
	require.Contains(t, out, "\r\033[Kdrain, pgq: done in ")
	require.Contains(t, out, "\r\033[Ktx, pgq  0s")
	require.Contains(t, out, "\r\033[Ktx, pgq: failed: boom second line\n")
}

func TestBarOnLog(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	bar := queuebench.NewBar(&b) // not a terminal
	bar.Begin("drain, pgq", 2000)
	bar.Progress(2000)
	bar.End(nil)
	require.Regexp(t, `^drain, pgq \.\.\.\ndrain, pgq: done in \S+\n$`, b.String())
}
