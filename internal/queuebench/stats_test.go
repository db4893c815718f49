package queuebench_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/queuebench"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1000}, 10},
	} {
		require.Equal(t, tc.want, queuebench.Median(tc.in), "%v", tc.in)
	}
	require.True(t, math.IsNaN(queuebench.Median(nil)))
	in := []float64{3, 1, 2}
	queuebench.Median(in)
	require.Equal(t, []float64{3, 1, 2}, in, "Median must not reorder its input")
}

func TestSpread(t *testing.T) {
	t.Parallel()
	lo, hi := queuebench.Spread([]float64{5, 2, 9, 4})
	require.Equal(t, 2.0, lo)
	require.Equal(t, 9.0, hi)
	lo, hi = queuebench.Spread(nil)
	require.True(t, math.IsNaN(lo) && math.IsNaN(hi))
}

func TestRatio(t *testing.T) {
	t.Parallel()
	require.Equal(t, 2.0, queuebench.Ratio(10, 5))
	require.Equal(t, 0.5, queuebench.Ratio(5, 10))
	require.True(t, math.IsNaN(queuebench.Ratio(1, 0)))
	require.True(t, math.IsNaN(queuebench.Ratio(math.NaN(), 1)))
	require.True(t, math.IsNaN(queuebench.Ratio(1, math.NaN())))
	require.True(t, math.IsNaN(queuebench.Ratio(math.Inf(1), 1)))
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, queuebench.Percentile(d, 0.50))
	require.Equal(t, 95*time.Millisecond, queuebench.Percentile(d, 0.95))
	require.Equal(t, 99*time.Millisecond, queuebench.Percentile(d, 0.99))
	require.Equal(t, 100*time.Millisecond, queuebench.Percentile(d, 1))
	require.Equal(t, time.Millisecond, queuebench.Percentile(d, 0))
	require.Equal(t, time.Duration(0), queuebench.Percentile(nil, 0.5))
	require.Equal(t, 7*time.Second, queuebench.Percentile([]time.Duration{7 * time.Second}, 0.99))
}

func TestFormatNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    float64
		dec  int
		want string
	}{
		{0, 0, "0"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{1234567.891, 1, "1,234,567.9"},
		{-12345, 0, "-12,345"},
		{0.125, 2, "0.12"},
		{math.NaN(), 0, "—"},
	} {
		require.Equal(t, tc.want, queuebench.FormatNumber(tc.v, tc.dec))
	}
}

func TestSustained(t *testing.T) {
	t.Parallel()
	ok := queuebench.SteadyResult{Offered: 1000, Enqueued: 1000, Handled: 1000, EnqueueRate: 990, Tail: 10 * time.Millisecond}
	require.True(t, ok.Sustained())
	slowProducers := ok
	slowProducers.EnqueueRate = 900
	require.False(t, slowProducers.Sustained())
	lost := ok
	lost.Handled = 999
	require.False(t, lost.Sustained())
	backlog := ok
	backlog.Tail = 2 * time.Second
	require.False(t, backlog.Sustained())
}
