package cluster

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// live holds the clusters that SIGINT and SIGTERM must clean up.
var live struct {
	sync.Mutex
	clusters map[*Cluster]struct{}
	started  bool
}

// watchSignals registers c for cleanup on SIGINT or SIGTERM. On the first such signal
// every registered cluster is closed and the signal is delivered again with its default
// action, so the process still ends the way the sender meant.
func watchSignals(c *Cluster) {
	live.Lock()
	defer live.Unlock()
	if live.clusters == nil {
		live.clusters = map[*Cluster]struct{}{}
	}
	live.clusters[c] = struct{}{}
	if live.started {
		return
	}
	live.started = true
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		live.Lock()
		clusters := make([]*Cluster, 0, len(live.clusters))
		for c := range live.clusters {
			clusters = append(clusters, c)
		}
		live.Unlock()
		for _, c := range clusters {
			if err := c.Close(); err != nil {
				c.log.Error("clean up e2e cluster after signal", "signal", sig, "err", err)
			}
		}
		signal.Reset(syscall.SIGINT, syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
}

// unwatchSignals forgets a closed cluster.
func unwatchSignals(c *Cluster) {
	live.Lock()
	defer live.Unlock()
	delete(live.clusters, c)
}
