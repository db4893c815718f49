package worker

import (
	"context"
	"sync"
)

// service is the Start/Stop contract shared by every long-lived loop of the
// worker (notifier, fetcher, completer, heartbeat, maintenance). The loop
// owns its goroutines through the WaitGroup; Stop cancels the loop's
// context and waits for them. Stop before Start makes a later Start a
// no-op, and a second Stop returns at once.
type service struct {
	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// start runs fn in a goroutine with a context that Stop cancels. It reports
// false, and runs nothing, when the service was already started or stopped.
func (s *service) start(ctx context.Context, fn func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return false
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Go(func() { fn(ctx) })
	return true
}

// stop cancels the loop and waits for its goroutines to return.
func (s *service) stop() {
	s.mu.Lock()
	s.stopped = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}
