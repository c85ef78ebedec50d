// Package poll waits on a condition with a deadline: what tests use instead of
// sleeping for a fixed time.
package poll

import (
	"context"
	"time"
)

// Until calls f until it reports done, returns an error (which ends the wait with that
// error), or d passes (context.DeadlineExceeded, or ctx's own error). The interval
// grows from 10 ms to 200 ms.
func Until(ctx context.Context, d time.Duration, f func() (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}
