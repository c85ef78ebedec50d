package xds

import "time"

// Refusals of the debug API are logged at most opLogBurst lines per source a second,
// so a client hammering it with bad tokens cannot flood wardend's log.
const (
	opLogBurst      = 3
	opLogWindow     = time.Second
	opLogMaxSources = 4096 // beyond this, new sources share one budget
)
