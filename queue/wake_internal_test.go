package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Wake-ups that arrive while one is being sent ride together in the next
// statement, and each caller returns only once its queues were sent.
func TestWakeUpsArrivingDuringASendShareTheNext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mu    sync.Mutex
		sends [][]string
	)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	w := newWaker(nil)
	w.notify = func(_ context.Context, queues []string) error {
		mu.Lock()
		sends = append(sends, queues)
		first := len(sends) == 1
		mu.Unlock()
		entered <- struct{}{}
		if first {
			<-release // hold the first send until the others have queued
		}
		return nil
	}

	firstDone := make(chan struct{})
	go func() {
		w.wake(ctx, []string{"a"})
		close(firstDone)
	}()
	<-entered // the first send is in flight

	const others = 20
	var wg sync.WaitGroup
	returned := make(chan string, others)
	for i := range others {
		q := []string{"b", "c"}[i%2]
		wg.Go(func() {
			w.wake(ctx, []string{q})
			returned <- q
		})
	}
	// Every caller has joined the waiting batch once it holds both queues
	// and nobody has returned (they cannot before the first send ends).
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.cur.queues) == 2
	}, 5*time.Second, time.Millisecond)
	require.Empty(t, returned, "a caller returned before its wake-up was sent")

	close(release)
	wg.Wait()
	<-firstDone
	require.Equal(t, [][]string{{"a"}, {"b", "c"}}, sends, "one statement for the first caller, one for the twenty that came meanwhile")
}

// A caller whose context ends stops waiting; the batch is still sent by
// whoever sends it.
func TestWakeReturnsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	w := newWaker(nil)
	w.notify = func(context.Context, []string) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	go w.wake(context.Background(), []string{"a"})
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.wake(ctx, []string{"b"}) // returns although a send is in flight
	close(release)
}
