package watch

import "time"

// debouncer computes when to reload after a burst of events: holdOff after the last
// event, but no later than maxWait after the first event of the burst, so continuous
// churn cannot postpone a reload forever.
type debouncer struct {
	holdOff, maxWait time.Duration
	first            time.Time
	pending          bool
}

// event records an event at now and returns the time the reload is due.
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
