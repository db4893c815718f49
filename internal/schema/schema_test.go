package schema

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"pgq", "tenant_1", "_x", "a23456789012345678901234567890123456789"} {
		require.NoError(t, Check(ok), ok)
	}
	for _, bad := range []string{"", "Pgq", "1abc", "pgq; drop table x", "a-b", "a.b", `"q"`, "a234567890123456789012345678901234567890x"} {
		require.Error(t, Check(bad), bad)
	}
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	in := `SELECT pg_notify('pgq.jobs', q) FROM pgq.jobs j JOIN xpgq.other o ON true -- pgq.`
	require.Equal(t, in, Rewrite("pgq", in))
	require.Equal(t,
		`SELECT pg_notify('t1.jobs', q) FROM t1.jobs j JOIN xpgq.other o ON true -- t1.`,
		Rewrite("t1", in))
	// Cached result is the same.
	require.Equal(t, Rewrite("t1", in), Rewrite("t1", in))
	require.Equal(t, "t1.jobs", Channel("t1", "jobs"))
}
