package watch

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDebouncerHoldsOffAndCapsBursts(t *testing.T) {
	d := Debouncer{HoldOff: 100 * time.Millisecond, MaxWait: time.Second}
	t0 := time.Unix(1000, 0)
	if got := d.Event(t0); !got.Equal(t0.Add(100 * time.Millisecond)) {
		t.Errorf("first event due %v", got.Sub(t0))
	}
	if got := d.Event(t0.Add(50 * time.Millisecond)); !got.Equal(t0.Add(150 * time.Millisecond)) {
		t.Errorf("second event due %v, want hold-off after it", got.Sub(t0))
	}
	if got := d.Event(t0.Add(950 * time.Millisecond)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("late event due %v, want the burst capped at maxWait", got.Sub(t0))
	}
	d.Fired()
	t1 := t0.Add(5 * time.Second)
	if got := d.Event(t1); !got.Equal(t1.Add(100 * time.Millisecond)) {
		t.Errorf("event after firing due %v, want a new burst", got.Sub(t1))
	}
}

// The loop both watchers share reloads once per burst, and reports a closed change
// channel.
func TestDebounceLoopReloadsOncePerBurst(t *testing.T) {
	changes := make(chan struct{}, 1)
	reloads := make(chan time.Time, 10)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A hold-off far longer than the burst takes, so a loaded machine cannot split the
	// burst in two; only lower bounds on time are checked (a sleep is never shorter).
	const holdOff = 400 * time.Millisecond
	go func() {
		done <- DebounceLoop(ctx, holdOff, time.Minute, changes, func() bool { reloads <- time.Now(); return true })
	}()
	var last time.Time
	for i := 0; i < 5; i++ { // a burst: 5 changes back to back
		changes <- struct{}{}
		last = time.Now()
	}
	first := <-reloads
	if d := first.Sub(last); d < holdOff {
		t.Errorf("reloaded %v after the burst's last change, before its hold-off (%v) ended", d, holdOff)
	}
	select {
	case <-reloads:
		t.Error("two reloads for one burst")
	case <-time.After(2 * holdOff):
	}
	close(changes)
	if err := <-done; !errors.Is(err, ErrChangesClosed) {
		t.Errorf("loop ended with %v, want ErrChangesClosed", err)
	}
}

// TestDebounceLoopStopsCleanlyWhenTheProducerClosesOnCancel: the file watcher's forwarder
// closes changes when ctx ends, so the loop may see the closed channel before ctx.Done.
// That is a clean stop, not ErrChangesClosed (a CI run once failed on exactly this).
func TestDebounceLoopStopsCleanlyWhenTheProducerClosesOnCancel(t *testing.T) {
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		changes := make(chan struct{})
		cancel()
		close(changes) // both ready: select picks either
		if err := DebounceLoop(ctx, time.Millisecond, time.Second, changes, func() bool { return true }); err != nil {
			t.Fatalf("run %d: DebounceLoop = %v after ctx ended, want nil", i, err)
		}
	}
	changes := make(chan struct{})
	close(changes)
	if err := DebounceLoop(context.Background(), time.Millisecond, time.Second, changes, func() bool { return true }); !errors.Is(err, ErrChangesClosed) {
		t.Fatalf("DebounceLoop with a live ctx and closed changes = %v, want ErrChangesClosed", err)
	}
}
