package kube

import "time"

// Debounce defaults, the same as directory mode's.
const (
	DefaultHoldOff = 100 * time.Millisecond
	DefaultMaxWait = 10 * time.Second
)

// debouncer computes when to rebuild after a burst of changes: holdOff after the last
// change, but no later than maxWait after the first change of the burst.
type debouncer struct {
	holdOff, maxWait time.Duration
	first            time.Time
	pending          bool
}

// event records a change at now and returns when the rebuild is due.
func (d *debouncer) event(now time.Time) time.Time {
	if !d.pending {
		d.pending, d.first = true, now
	}
	due := now.Add(d.holdOff)
	if limit := d.first.Add(d.maxWait); due.After(limit) {
		due = limit
	}
	return due
}

// fired ends the burst.
func (d *debouncer) fired() { d.pending = false }
