package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardenmesh/warden/cmd/wardenctl/capture"
)

// PodSpec names a pod.
type PodSpec struct {
	Namespace string
	Name      string
}

// Pod is a network namespace with one address on the run's bridge.
type Pod struct {
	cluster   *Cluster
	namespace string
	name      string
	netns     string
	ip        string
	dir       string

	mu    sync.Mutex
	procs []*Process
}

// AddPod creates a pod: its network namespace, a veth link to the bridge, a /32 address
// routed through the host, loopback, and /etc/netns files (a hosts file with localhost
// and the pod's own name, and a resolv.conf that points at nothing, so no name lookup
// ever leaves the machine).
func (c *Cluster) AddPod(ctx context.Context, spec PodSpec) (*Pod, error) {
	if spec.Namespace == "" || spec.Name == "" {
		return nil, errors.New("pod needs a namespace and a name")
	}
	key := spec.Namespace + "/" + spec.Name
	h := fnv.New32a()
	h.Write([]byte(key))
	suffix := fmt.Sprintf("%08x", h.Sum32())
	p := &Pod{
		cluster:   c,
		namespace: spec.Namespace,
		name:      spec.Name,
		netns:     netnsPrefix(c.n) + suffix,
		dir:       c.podDir(spec.Namespace, spec.Name),
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("cluster is closed")
	}
	if other, ok := c.pods[p.netns]; ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("pod %s: already exists or collides with %s/%s", key, other.namespace, other.name)
	}
	if c.nextPod > 254 {
		c.mu.Unlock()
		return nil, errors.New("pod IPs exhausted (253 per run)")
	}
	p.ip = fmt.Sprintf("10.248.%d.%d", c.n, c.nextPod)
	c.nextPod++
	c.pods[p.netns] = p
	c.mu.Unlock()

	if err := p.create(ctx, fmt.Sprintf("w%dh%s", c.n, suffix)); err != nil {
		c.mu.Lock()
		delete(c.pods, p.netns)
		c.mu.Unlock()
		cleanCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("add pod %s: %w", key, err), deleteNetns(cleanCtx, p.netns))
	}
	c.log.Debug("pod added", "pod", key, "netns", p.netns, "ip", p.ip)
	return p, nil
}

// create builds the pod's namespace and link.
func (p *Pod) create(ctx context.Context, hostVeth string) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("create pod dir: %w", err)
	}
	if err := os.MkdirAll(p.etcDir(), 0o755); err != nil {
		return fmt.Errorf("create /etc/netns dir: %w", err)
	}
	if err := p.writeHosts(nil); err != nil {
		return err
	}
	resolv := "# warden e2e pod: no DNS, names come from /etc/hosts\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
	if err := os.WriteFile(filepath.Join(p.etcDir(), "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	host := hostIP(p.cluster.n)
	steps := [][]string{
		{"netns", "add", p.netns},
		{"link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", p.netns},
		{"link", "set", hostVeth, "master", bridgeName(p.cluster.n), "up"},
		// With br_netfilter, a pod reaching itself through a Service IP gets its packet
		// back on the bridge port it came from; hairpin mode lets it through.
		{"link", "set", "dev", hostVeth, "type", "bridge_slave", "hairpin", "on"},
		{"-n", p.netns, "link", "set", "lo", "up"},
		{"-n", p.netns, "addr", "add", p.ip + "/32", "dev", "eth0"},
		{"-n", p.netns, "link", "set", "eth0", "up"},
		{"-n", p.netns, "route", "add", host, "dev", "eth0", "scope", "link"},
		{"-n", p.netns, "route", "add", "default", "via", host, "dev", "eth0"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	// Apps may listen on low ports without root; redirects from the host are ignored,
	// so pod-to-pod traffic keeps going through the host.
	_, err := p.Exec(ctx, "sysctl", "-q", "-w",
		"net.ipv4.ip_unprivileged_port_start=0",
		"net.ipv4.conf.all.accept_redirects=0")
	return err
}

// Namespace is the pod's Kubernetes namespace.
func (p *Pod) Namespace() string { return p.namespace }

// Name is the pod's name.
func (p *Pod) Name() string { return p.name }

// IP is the pod's address.
func (p *Pod) IP() string { return p.ip }

// NetNS is the name of the pod's network namespace (for `ip netns exec`).
func (p *Pod) NetNS() string { return p.netns }

// Dir is the pod's directory under the run's work dir, readable by every pod user.
func (p *Pod) Dir() string { return p.dir }

func (p *Pod) etcDir() string { return filepath.Join("/etc/netns", p.netns) }

// SetHosts replaces the pod's host entries (name -> IP), as cluster DNS answers would
// for callers in the pod's namespace; localhost and the pod's own name are always there.
func (c *Cluster) SetHosts(p *Pod, entries map[string]string) error {
	if p.cluster != c {
		return fmt.Errorf("pod %s/%s belongs to another cluster", p.namespace, p.name)
	}
	return p.writeHosts(entries)
}

// writeHosts writes the hosts file in place. `ip netns exec` bind-mounts it over
// /etc/hosts for each process it starts, so replacing the file by a rename would leave
// running processes with the old one; truncating and rewriting keeps them current.
func (p *Pod) writeHosts(entries map[string]string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	byIP := map[string][]string{}
	for name, ip := range entries {
		byIP[ip] = append(byIP[ip], name)
	}
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	fmt.Fprintf(&b, "%s\t%s\n", p.ip, p.name)
	for _, ip := range slices.Sorted(maps.Keys(byIP)) {
		names := byIP[ip]
		slices.Sort(names)
		fmt.Fprintf(&b, "%s\t%s\n", ip, strings.Join(names, " "))
	}
	if err := os.WriteFile(filepath.Join(p.etcDir(), "hosts"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write hosts of pod %s/%s: %w", p.namespace, p.name, err)
	}
	return nil
}

// Exec runs a command inside the pod's network namespace as root and returns its
// combined output.
func (p *Pod) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("exec: empty command")
	}
	return command(ctx, nil, "ip", append([]string{"netns", "exec", p.netns}, argv...)...)
}

// ExecAs runs a command inside the pod's network namespace as uid and gid (for example
// as the proxy's uid, whose traffic capture leaves alone) and returns its combined
// output.
func (p *Pod) ExecAs(ctx context.Context, uid, gid int, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("exec: empty command")
	}
	return command(ctx, nil, "ip", append(p.wrap(uid, gid, false), argv...)...)
}

// ApplyCapture installs Warden's traffic-capture rules in the pod, replacing the pod's
// nat table (which holds nothing else).
func (p *Pod) ApplyCapture(ctx context.Context, cfg capture.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("capture config: %w", err)
	}
	rules := capture.Rules(cfg)
	if _, err := command(ctx, strings.NewReader(rules), "ip", "netns", "exec", p.netns, "iptables-restore"); err != nil {
		return fmt.Errorf("apply capture rules in pod %s/%s: %w", p.namespace, p.name, err)
	}
	return nil
}

// wrap returns the ip arguments that run a command in the pod as uid:gid.
func (p *Pod) wrap(uid, gid int, pdeathsig bool) []string {
	args := []string{"netns", "exec", p.netns}
	if uid == 0 && gid == 0 {
		return args
	}
	args = append(args, "setpriv", "--reuid", fmt.Sprint(uid), "--regid", fmt.Sprint(gid), "--clear-groups")
	if pdeathsig {
		// Changing credentials clears the parent-death signal; set it again.
		args = append(args, "--pdeathsig", "KILL")
	}
	return append(args, "--")
}
