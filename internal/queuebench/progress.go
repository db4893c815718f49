package queuebench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar is a Reporter that draws a progress bar on a terminal, redrawn at
// most ten times a second, and prints one line per finished run with its
// duration or error. On anything but a terminal (a log file, a pipe) it
// prints only those lines, once a run starts and once it ends.
type Bar struct {
	w     io.Writer
	width int
	tty   bool

	mu      sync.Mutex
	label   string
	total   int
	done    int
	started time.Time
	drawn   time.Time
}

// NewBar returns a Bar that draws on w.
func NewBar(w io.Writer) *Bar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			tty = fi.Mode()&os.ModeCharDevice != 0
		}
	}
	return &Bar{w: w, width: 30, tty: tty}
}

// NewTerminalBar returns a Bar that draws on w as on a terminal, whatever
// w is.
func NewTerminalBar(w io.Writer) *Bar { return &Bar{w: w, width: 30, tty: true} }

// Begin starts a bar for a run of total jobs (0: no count is known).
func (b *Bar) Begin(label string, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label, b.total, b.done, b.started = label, total, 0, time.Now()
	b.draw(true)
}

// Progress moves the bar to done jobs.
func (b *Bar) Progress(done int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	b.draw(false)
}

// End replaces the bar by a line saying how the run ended.
func (b *Bar) End(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	took := time.Since(b.started).Round(100 * time.Millisecond)
	status := "done in " + took.String()
	if err != nil {
		status = "failed: " + oneLine(err.Error())
	}
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
	fmt.Fprintf(b.w, "%s: %s\n", b.label, status)
}

func (b *Bar) draw(force bool) {
	if !b.tty {
		if force {
			fmt.Fprintf(b.w, "%s ...\n", b.label)
		}
		return
	}
	now := time.Now()
	if !force && now.Sub(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = now
	elapsed := now.Sub(b.started).Round(time.Second)
	if b.total <= 0 {
		fmt.Fprintf(b.w, "\r\033[K%s  %s", b.label, elapsed)
		return
	}
	frac := min(1, float64(b.done)/float64(b.total))
	full := int(frac * float64(b.width))
	bar := strings.Repeat("#", full) + strings.Repeat(".", b.width-full)
	fmt.Fprintf(b.w, "\r\033[K%s  [%s] %3.0f%%  %s/%s  %s", b.label, bar, 100*frac,
		FormatNumber(float64(b.done), 0), FormatNumber(float64(b.total), 0), elapsed)
}
