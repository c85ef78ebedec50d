package xds

import (
	"sync"
	"time"
)

// logLimiter allows at most opLogBurst log lines per source per second, so a client
// hammering the debug API with bad tokens cannot flood wardend's log. Its zero value
// is ready to use.
type logLimiter struct {
	mu      sync.Mutex
	now     func() time.Time // time.Now when nil
	sources map[string]*logWindow
}

type logWindow struct {
	start   time.Time
	lines   int
	dropped int // refused since the last allowed line
}

const (
	opLogBurst      = 3
	opLogWindow     = time.Second
	opLogMaxSources = 4096 // beyond this, windows that ended are forgotten
)

// allow reports whether source may log a line now and how many lines it had refused
// since its last allowed one.
func (l *logLimiter) allow(source string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if l.sources == nil {
		l.sources = map[string]*logWindow{}
	}
	w := l.sources[source]
	if w == nil {
		if len(l.sources) >= opLogMaxSources {
			for k, o := range l.sources {
				if now.Sub(o.start) >= opLogWindow {
					delete(l.sources, k)
				}
			}
		}
		w = &logWindow{start: now}
		l.sources[source] = w
	}
	if now.Sub(w.start) >= opLogWindow {
		w.start, w.lines = now, 0
	}
	if w.lines >= opLogBurst {
		w.dropped++
		return false, 0
	}
	w.lines++
	d := w.dropped
	w.dropped = 0
	return true, d
}
