package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configure a Cluster.
type Options struct {
	// Logger receives progress and cleanup messages; nil discards them.
	Logger *slog.Logger
	// WorkDir holds process logs and whatever the caller puts in pod directories. When
	// empty a temporary directory is created and removed by Close.
	WorkDir string
	// NoSignalHandler leaves SIGINT and SIGTERM to the caller, who must then call Close.
	NoSignalHandler bool
}

// Cluster is one run's set of emulated pods and services. Its methods are safe for
// concurrent use.
type Cluster struct {
	log        *slog.Logger
	slot       *slot
	n          int
	workDir    string
	ownWorkDir bool

	mu       sync.Mutex
	pods     map[string]*Pod // by netns name
	nextPod  int
	nextSvc  int
	services map[serviceKey]endpoint
	closed   bool

	closeOnce sync.Once
	closeErr  error
}

// New checks the machine, removes leftovers of dead runs, takes a run slot and creates
// the slot's bridge and host rules. Failures are errors: e2e never skips.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("e2e needs root: run as root or with sudo")
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := Cleanup(true); err != nil {
		log.Warn("leftovers of earlier e2e runs remain", "err", err)
	}
	s, err := acquireSlot()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		log:      log.With("run", runID(s.n)),
		slot:     s,
		n:        s.n,
		pods:     map[string]*Pod{},
		nextPod:  2,
		nextSvc:  1,
		services: map[serviceKey]endpoint{},
	}
	// Leftovers of a dead run in this very slot.
	if err := cleanSlot(ctx, c.n); err != nil {
		s.release()
		return nil, err
	}
	if err := c.setUp(ctx, opts); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	if !opts.NoSignalHandler {
		watchSignals(c)
	}
	c.log.Info("e2e cluster ready", "bridge", bridgeName(c.n), "hostIP", c.HostIP(), "workDir", c.workDir)
	return c, nil
}

// setUp creates the work directory, records the run's state and builds the network.
func (c *Cluster) setUp(ctx context.Context, opts Options) error {
	c.workDir = opts.WorkDir
	if c.workDir == "" {
		dir, err := os.MkdirTemp("", "warden-e2e-"+runID(c.n)+"-")
		if err != nil {
			return fmt.Errorf("create work dir: %w", err)
		}
		c.workDir, c.ownWorkDir = dir, true
	} else if err := os.MkdirAll(c.workDir, 0o755); err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	// Pod processes run as other users (the proxy as 1337) and read files from here.
	if err := os.Chmod(c.workDir, 0o755); err != nil {
		return fmt.Errorf("open work dir to pod users: %w", err)
	}
	st := state{PID: os.Getpid(), Started: time.Now().UTC(), WorkDir: c.workDir, OwnWorkDir: c.ownWorkDir}
	if err := writeState(c.n, st); err != nil {
		return err
	}
	br := bridgeName(c.n)
	steps := [][]string{
		// A fixed MAC: a bridge otherwise takes its ports' lowest MAC, which changes as
		// pods come and go and leaves stale ARP entries in the other pods.
		{"link", "add", br, "address", fmt.Sprintf("02:77:64:00:%02x:01", c.n), "type", "bridge"},
		{"addr", "add", hostIP(c.n) + "/24", "dev", br},
		{"link", "set", br, "up"},
		// Service IPs stay on the bridge even when nothing translates them, so the host
		// never sends them to its default gateway.
		{"route", "add", serviceSubnet(c.n), "dev", br},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return fmt.Errorf("create bridge: %w", err)
		}
	}
	// Forwarding only for packets that arrive on this bridge; the forward chain keeps
	// them on it.
	if err := installHostRules(ctx, c.n); err != nil {
		return err
	}
	if _, err := command(ctx, nil, "sysctl", "-q", "-w",
		fmt.Sprintf("net.ipv4.conf.%s.forwarding=1", br),
		fmt.Sprintf("net.ipv4.conf.%s.send_redirects=0", br)); err != nil {
		return fmt.Errorf("enable forwarding on %s: %w", br, err)
	}
	return nil
}

// RunID names this run; every resource it creates carries it.
func (c *Cluster) RunID() string { return runID(c.n) }

// HostIP is the host's address on the pod network, where wardend should listen.
func (c *Cluster) HostIP() string { return hostIP(c.n) }

// PodCIDR is the range pod addresses come from.
func (c *Cluster) PodCIDR() string { return podSubnet(c.n) }

// ServiceCIDR is the range Service virtual IPs come from.
func (c *Cluster) ServiceCIDR() string { return serviceSubnet(c.n) }

// WorkDir is the run's directory for logs and pod files.
func (c *Cluster) WorkDir() string { return c.workDir }

// AllocServiceIP returns an unused Service virtual IP.
func (c *Cluster) AllocServiceIP() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nextSvc > 254 {
		return "", errors.New("service IPs exhausted (254 per run)")
	}
	ip := fmt.Sprintf("10.249.%d.%d", c.n, c.nextSvc)
	c.nextSvc++
	return ip, nil
}

// SetServiceDNAT makes vip:port lead to endpointIP:targetPort for callers whose traffic
// reaches the host unchanged (pods without a sidecar, or a sidecar passing it through),
// as kube-proxy would. Setting a vip:port again replaces its endpoint.
func (c *Cluster) SetServiceDNAT(vip string, port uint32, endpointIP string, targetPort uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("cluster is closed")
	}
	key := serviceKey{vip: vip, port: port}
	prev, had := c.services[key]
	c.services[key] = endpoint{ip: endpointIP, port: targetPort}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := syncServices(ctx, c.n, c.services); err != nil {
		if had {
			c.services[key] = prev
		} else {
			delete(c.services, key)
		}
		return fmt.Errorf("service %s:%d: %w", vip, port, err)
	}
	return nil
}

// RemoveServiceDNAT forgets vip:port's translation.
func (c *Cluster) RemoveServiceDNAT(vip string, port uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("cluster is closed")
	}
	delete(c.services, serviceKey{vip: vip, port: port})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return syncServices(ctx, c.n, c.services)
}

// Close stops every process and removes every pod, link, rule and file of the run. It
// is idempotent; later calls return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		pods := make([]*Pod, 0, len(c.pods))
		for _, p := range c.pods {
			pods = append(pods, p)
		}
		c.mu.Unlock()
		unwatchSignals(c)

		var errs []error
		var wg sync.WaitGroup
		for _, p := range pods {
			wg.Go(p.stopAll)
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, p := range pods {
			errs = append(errs, deleteNetns(ctx, p.netns))
		}
		errs = append(errs, cleanSlot(ctx, c.n))
		if c.ownWorkDir && c.workDir != "" {
			errs = append(errs, os.RemoveAll(c.workDir))
		}
		c.slot.release()
		c.closeErr = errors.Join(errs...)
		if c.closeErr != nil {
			c.closeErr = fmt.Errorf("close e2e cluster %s: %w", runID(c.n), c.closeErr)
		}
		c.log.Info("e2e cluster removed", "err", c.closeErr)
	})
	return c.closeErr
}

// podDir is where a pod's logs and files live.
func (c *Cluster) podDir(namespace, name string) string {
	return filepath.Join(c.workDir, "pods", namespace+"_"+name)
}
