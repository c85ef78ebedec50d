package watch

import "time"

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
