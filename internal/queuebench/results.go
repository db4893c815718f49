package queuebench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Figure is one measured quantity of a workload, such as the drain rate.
type Figure struct {
	// Workload names the workload, such as "1 drain".
	Workload string
	// Name says what is measured, such as "drain, jobs/s".
	Name string
	// HigherIsBetter is true for rates and false for latencies and costs.
	HigherIsBetter bool
	// Decimals is how many digits follow the decimal point in the table.
	Decimals int
}

// Results holds the values measured for each figure and system, in the
// order they were first reported, and notes on figures that have no value
// (not supported, failed). It is safe for concurrent use.
type Results struct {
	mu      sync.Mutex
	figures []Figure
	systems []string
	values  map[cell][]float64
	notes   map[cell]string
}

type cell struct {
	figure Figure
	system string
}

// NewResults returns empty results for the systems, in the order their
// columns are printed; the first is compared with each of the others.
func NewResults(systems ...string) *Results {
	return &Results{systems: systems, values: map[cell][]float64{}, notes: map[cell]string{}}
}

// Systems returns the systems' names in column order.
func (r *Results) Systems() []string { return r.systems }

// addFigure adds f after the figures of its workload and of every workload
// whose name sorts before its own ("1 drain" < "2 steady"), so that the
// table keeps the workloads' order whatever order they ran in.
func (r *Results) addFigure(f Figure) {
	at := len(r.figures)
	for i, g := range r.figures {
		if g == f {
			return
		}
		if g.Workload > f.Workload && at == len(r.figures) {
			at = i
		}
	}
	r.figures = slices.Insert(r.figures, at, f)
}

// Add records one measured value of f for system.
func (r *Results) Add(f Figure, system string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addFigure(f)
	c := cell{f, system}
	r.values[c] = append(r.values[c], v)
}

// Note records why f has no value for system (the first note is kept).
func (r *Results) Note(f Figure, system, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addFigure(f)
	c := cell{f, system}
	if _, ok := r.notes[c]; !ok {
		r.notes[c] = note
	}
}

// Values returns the values recorded for f and system, in order.
func (r *Results) Values(f Figure, system string) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]float64(nil), r.values[cell{f, system}]...)
}

// Figures returns the figures in table order: by workload, and within a
// workload in the order they were first reported.
func (r *Results) Figures() []Figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Figure(nil), r.figures...)
}

// WriteTable writes the results as a Markdown table: one row per figure;
// per system the median of its values with their range in parentheses
// (when there is more than one), and after each system but the first, the
// ratio of the first system's median to this one's. Figures without a
// value show a dash, and a numbered note under the table says why.
func (r *Results) WriteTable(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	base := ""
	if len(r.systems) > 0 {
		base = r.systems[0]
	}
	head := []string{"workload", "figure"}
	for i, s := range r.systems {
		head = append(head, s)
		if i > 0 {
			head = append(head, base+"/"+s)
		}
	}
	writeRow(&b, head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
		if i >= 2 {
			sep[i] = "--:"
		}
	}
	writeRow(&b, sep)

	var notes []string
	noteRef := func(text string) string {
		for i, n := range notes {
			if n == text {
				return fmt.Sprintf("—[^%d]", i+1)
			}
		}
		notes = append(notes, text)
		return fmt.Sprintf("—[^%d]", len(notes))
	}
	for _, f := range r.figures {
		better := "higher is better"
		if !f.HigherIsBetter {
			better = "lower is better"
		}
		row := []string{f.Workload, f.Name + " (" + better + ")"}
		baseMedian := Median(r.values[cell{f, base}])
		for i, s := range r.systems {
			vs := r.values[cell{f, s}]
			switch {
			case len(vs) > 0:
				row = append(row, formatCell(vs, f.Decimals))
			case r.notes[cell{f, s}] != "":
				row = append(row, noteRef(s+": "+r.notes[cell{f, s}]))
			default:
				row = append(row, "—")
			}
			if i > 0 {
				row = append(row, formatRatio(Ratio(baseMedian, Median(vs))))
			}
		}
		writeRow(&b, row)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "[^%d]: %s\n", i+1, oneLine(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" ")
		b.WriteString(strings.ReplaceAll(c, "|", `\|`))
		b.WriteString(" |")
	}
	b.WriteString("\n")
}

// formatCell prints the median of vs and, for several values, their range.
func formatCell(vs []float64, decimals int) string {
	m := Median(vs)
	if len(vs) == 1 {
		return FormatNumber(m, decimals)
	}
	lo, hi := Spread(vs)
	return fmt.Sprintf("%s (%s–%s)", FormatNumber(m, decimals), FormatNumber(lo, decimals), FormatNumber(hi, decimals))
}

func formatRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// FormatNumber prints v with the given number of decimals and thousands
// separators: 12345.678 with 1 decimal is "12,345.7".
func FormatNumber(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return sign + b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
