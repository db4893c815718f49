package dashboard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
)

// TestHubLoopRunsOnlyWhileSubscribed: the first listener starts the
// overview loop, the last one to leave stops it, and a later listener
// starts a new one.
func TestHubLoopRunsOnlyWhileSubscribed(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	hh, err := New(d.Pool, &Options{Schema: d.Schema, RefreshInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	b := hh.(*handler).hub
	for range 2 {
		ch1, unsub1 := b.subscribe()
		ch2, unsub2 := b.subscribe()
		<-ch1
		<-ch2
		b.mu.Lock()
		done := b.done
		b.mu.Unlock()
		unsub1()
		select {
		case <-done:
			t.Fatal("the loop stopped while a listener was left")
		case <-ch2: // still fed
		}
		unsub2()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the loop still runs without listeners")
		}
		b.mu.Lock()
		require.Nil(t, b.cancel)
		b.mu.Unlock()
	}
}
