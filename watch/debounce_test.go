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
	go func() {
		done <- DebounceLoop(ctx, 30*time.Millisecond, time.Second, changes, func() bool { reloads <- time.Now(); return true })
	}()
	start := time.Now()
	for i := 0; i < 5; i++ { // a burst: 5 changes 10 ms apart
		changes <- struct{}{}
		time.Sleep(10 * time.Millisecond)
	}
	first := <-reloads
	if d := first.Sub(start); d < 60*time.Millisecond {
		t.Errorf("reloaded %v after the burst began, before its hold-off ended", d)
	}
	select {
	case <-reloads:
		t.Error("two reloads for one burst")
	case <-time.After(100 * time.Millisecond):
	}
	close(changes)
	if err := <-done; !errors.Is(err, ErrChangesClosed) {
		t.Errorf("loop ended with %v, want ErrChangesClosed", err)
	}
}
