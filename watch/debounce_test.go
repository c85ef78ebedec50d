package watch

import (
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
