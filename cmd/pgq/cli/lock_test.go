package cli_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/lock"
)

func TestLockCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out := b.mustRun(t, "lock", "key", "reports:daily", "日本")
	require.Equal(t, strconv.FormatInt(lock.Key(b.db.Schema, "reports:daily"), 10)+"\n"+
		strconv.FormatInt(lock.Key(b.db.Schema, "日本"), 10)+"\n", out)

	l, err := lock.New(b.db.Pool, &lock.Config{Schema: b.db.Schema})
	require.NoError(t, err)
	h, err := l.Lock(ctx, "reports:daily")
	require.NoError(t, err)
	defer func() { require.NoError(t, h.Unlock(ctx)) }()
	key := strconv.FormatInt(h.Key(), 10)

	out = b.mustRun(t, "lock", "list", "--name", "reports:daily")
	require.Contains(t, out, "KEY")
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, key+" ") {
			line = l
		}
	}
	require.NotEmpty(t, line, "lock %s not listed:\n%s", key, out)
	require.Contains(t, line, "lock reports:daily")
	require.Contains(t, line, "held")
	require.Contains(t, line, "ExclusiveLock")

	var list struct {
		Locks []struct {
			Key          int64   `json:"key"`
			Owner        string  `json:"owner"`
			Granted      bool    `json:"granted"`
			Mode         string  `json:"mode"`
			PID          int32   `json:"pid"`
			BackendStart *string `json:"backend_start"`
		} `json:"locks"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.mustRun(t, "lock", "list", "--json")), &list))
	found := false
	for _, in := range list.Locks {
		if in.Key == h.Key() {
			found = true
			require.Empty(t, in.Owner, "no --name: the key cannot be named")
			require.True(t, in.Granted)
			require.NotZero(t, in.PID)
			require.NotNil(t, in.BackendStart)
		}
	}
	require.True(t, found)
}
