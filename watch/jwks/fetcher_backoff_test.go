package jwks

import (
	"testing"
	"time"
)

func TestRetryBacksOffToTheRetryOption(t *testing.T) {
	f := New(Options{Retry: 30 * time.Second})
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: 30 * time.Second, 20: 30 * time.Second} {
		if got := f.retryDelay(failures); got != want {
			t.Errorf("after %d failures: retry in %v, want %v", failures, got, want)
		}
	}
}
