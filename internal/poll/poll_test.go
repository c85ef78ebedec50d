package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(context.Background(), time.Minute, func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Errorf("done on the third call: err %v after %d calls", err, n)
	}
	stop := errors.New("wrong")
	if err := Until(context.Background(), time.Minute, func() (bool, error) { return false, stop }); err != stop {
		t.Errorf("an error ends the wait: got %v", err)
	}
	if err := Until(context.Background(), 30*time.Millisecond, func() (bool, error) { return false, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("never done: got %v, want the deadline", err)
	}
}
