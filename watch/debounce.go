package watch

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Debouncer computes when to reload after a burst of changes: HoldOff after the last
// change, but no later than MaxWait after the first change of the burst, so continuous
// churn cannot postpone a reload forever. Directory and Kubernetes mode share it.
type Debouncer struct {
	HoldOff, MaxWait time.Duration
	first            time.Time
	pending          bool
}

// Event records a change at now and returns the time the reload is due.
func (d *Debouncer) Event(now time.Time) time.Time {
	if !d.pending {
		d.pending, d.first = true, now
	}
	due := now.Add(d.HoldOff)
	if limit := d.first.Add(d.MaxWait); due.After(limit) {
		due = limit
	}
	return due
}

// Fired ends the burst.
func (d *Debouncer) Fired() { d.pending = false }

// ErrChangesClosed is returned by DebounceLoop when its change channel is closed.
var ErrChangesClosed = errors.New("watch: change notifications ended")

// DebounceLoop is the reload loop of both the directory watcher and the Kubernetes
// source: every value on changes starts or extends a burst, and reload runs once the
// burst is due (Debouncer: holdOff after the last change, at most maxWait after the
// first). It returns nil when ctx ends or reload returns false, and ErrChangesClosed
// when changes is closed while ctx is still live (a producer that closes changes because
// ctx ended is a clean stop, whichever of the two the loop sees first).
func DebounceLoop(ctx context.Context, holdOff, maxWait time.Duration, changes <-chan struct{}, reload func() bool) error {
	deb := Debouncer{HoldOff: holdOff, MaxWait: maxWait}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changes:
			if !ok {
				if ctx.Err() != nil {
					return nil // the producer closed changes because ctx ended: not a failure
				}
				return ErrChangesClosed
			}
			timer.Reset(time.Until(deb.Event(time.Now())))
		case <-timer.C:
			deb.Fired()
			if !reload() {
				return nil
			}
		}
	}
}

// Unchanged reports whether in says nothing new after prev: the same Version and the
// same Diagnostics. Both watchers emit an Input only when it is not Unchanged.
func Unchanged(prev, in *Input) bool {
	return prev != nil && in.Version == prev.Version && slices.Equal(in.Diagnostics, prev.Diagnostics)
}
