package cli_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

func TestResultCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	echo := b.mustRun(t, "enqueue", "pgq.echo", "--args", `{"x":1}`)
	fail := b.mustRun(t, "enqueue", "pgq.fail", "--args", `{"message":"nope","permanent":true}`)
	echoID, failID := parseID(t, echo), parseID(t, fail)

	out := b.mustRun(t, "result", itoa(echoID))
	require.Contains(t, out, "available (PENDING)")

	// Still pending after a short wait: an error, with the state shown.
	r := b.run(t, "result", itoa(echoID), "--wait", "50ms")
	require.Error(t, r.err)
	require.Contains(t, r.err.Error(), "still available")
	require.Contains(t, r.out, "PENDING")

	b.mustRun(t, "worker", "--burst")
	var got struct {
		State  string          `json:"state"`
		Celery string          `json:"celery_state"`
		Ready  bool            `json:"ready"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.mustRun(t, "result", itoa(echoID), "--wait", "10s", "--json")), &got))
	require.Equal(t, "succeeded", got.State)
	require.Equal(t, "SUCCESS", got.Celery)
	require.True(t, got.Ready)
	require.JSONEq(t, `{"x":1}`, string(got.Result))

	out = b.mustRun(t, "result", itoa(failID))
	require.Contains(t, out, "failed (FAILURE)")
	require.Contains(t, out, "nope")

	r = b.run(t, "result", "999999")
	require.ErrorContains(t, r.err, "no such job 999999")
	r = b.run(t, "result", "abc")
	_, code := r.report()
	require.Equal(t, cli.ExitUsage, code)
}

func TestWorkerAutoscaleFlag(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := parseID(t, b.mustRun(t, "enqueue", "pgq.noop"))
	b.mustRun(t, "worker", "--burst", "--autoscale", "8,2")
	state, _, _ := b.jobState(t, id)
	require.Equal(t, "succeeded", state)
	for _, bad := range [][]string{
		{"worker", "--autoscale", "x"},
		{"worker", "--autoscale", "2,8"},
		{"worker", "--autoscale", "0"},
		{"worker", "--autoscale", "8,2", "-c", "4"},
	} {
		r := b.run(t, bad...)
		_, code := r.report()
		require.Equal(t, cli.ExitUsage, code, "%v", bad)
	}
}
