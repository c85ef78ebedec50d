package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// jump is one rule in a built-in chain that sends traffic to a run's own chain.
type jump struct {
	table, chain string
	spec         []string
}

// hostJumps lists the rules that hook slot n's chains into the host's tables.
func hostJumps(n int) []jump {
	svc := []string{"-d", serviceSubnet(n), "-j", chainSvc(n)}
	return []jump{
		{"nat", "PREROUTING", svc},
		{"nat", "OUTPUT", svc},
		{"nat", "POSTROUTING", []string{"-j", chainPost(n)}},
		{"filter", "FORWARD", []string{"-j", chainFwd(n)}},
	}
}

// installHostRules creates slot n's chains and hooks them in. The forward chain lets
// traffic pass between the run's pods and drops anything else that crosses its bridge,
// so nothing from a pod is ever forwarded to another machine, or from one to a pod.
func installHostRules(ctx context.Context, n int) error {
	br := bridgeName(n)
	filter := strings.Join([]string{
		"*filter",
		fmt.Sprintf(":%s - [0:0]", chainFwd(n)),
		fmt.Sprintf("-A %s -i %s -o %s -j ACCEPT", chainFwd(n), br, br),
		fmt.Sprintf("-A %s -i %s -j DROP", chainFwd(n), br),
		fmt.Sprintf("-A %s -o %s -j DROP", chainFwd(n), br),
		"COMMIT", "",
	}, "\n")
	if _, err := command(ctx, strings.NewReader(filter), "iptables-restore", "--noflush"); err != nil {
		return fmt.Errorf("install forward rules: %w", err)
	}
	if err := syncServices(ctx, n, nil); err != nil {
		return err
	}
	for _, j := range hostJumps(n) {
		if err := iptables(ctx, append([]string{"-t", j.table, "-I", j.chain, "1"}, j.spec...)...); err != nil {
			return fmt.Errorf("hook %s into %s: %w", j.spec[len(j.spec)-1], j.chain, err)
		}
	}
	return nil
}

// serviceKey identifies a Service port.
type serviceKey struct {
	vip  string
	port uint32
}

// endpoint is where a Service port's traffic goes.
type endpoint struct {
	ip   string
	port uint32
}

// syncServices rewrites slot n's nat chains from the service table: one DNAT per
// Service port, and a masquerade for every endpoint so a pod that reaches itself through
// its own Service gets the answer back (hairpin), as kube-proxy does.
func syncServices(ctx context.Context, n int, services map[serviceKey]endpoint) error {
	keys := make([]serviceKey, 0, len(services))
	for k := range services {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].vip != keys[j].vip {
			return keys[i].vip < keys[j].vip
		}
		return keys[i].port < keys[j].port
	})
	lines := []string{"*nat", fmt.Sprintf(":%s - [0:0]", chainSvc(n)), fmt.Sprintf(":%s - [0:0]", chainPost(n))}
	hairpin := map[string]bool{}
	for _, k := range keys {
		ep := services[k]
		lines = append(lines, fmt.Sprintf("-A %s -d %s/32 -p tcp -m tcp --dport %d -j DNAT --to-destination %s:%d",
			chainSvc(n), k.vip, k.port, ep.ip, ep.port))
		hairpin[ep.ip] = true
	}
	eps := make([]string, 0, len(hairpin))
	for ip := range hairpin {
		eps = append(eps, ip)
	}
	sort.Strings(eps)
	for _, ip := range eps {
		lines = append(lines, fmt.Sprintf("-A %s -s %s/32 -d %s/32 -j MASQUERADE", chainPost(n), ip, ip))
	}
	lines = append(lines, "COMMIT", "")
	if _, err := command(ctx, strings.NewReader(strings.Join(lines, "\n")), "iptables-restore", "--noflush"); err != nil {
		return fmt.Errorf("write service rules: %w", err)
	}
	return nil
}

// removeHostRules unhooks and deletes slot n's chains; missing ones are skipped.
func removeHostRules(ctx context.Context, n int) error {
	var errs []error
	for _, j := range hostJumps(n) {
		for iptables(ctx, append([]string{"-t", j.table, "-C", j.chain}, j.spec...)...) == nil {
			if err := iptables(ctx, append([]string{"-t", j.table, "-D", j.chain}, j.spec...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	chains := []struct{ table, name string }{
		{"nat", chainSvc(n)}, {"nat", chainPost(n)}, {"filter", chainFwd(n)},
	}
	for _, c := range chains {
		if iptables(ctx, "-t", c.table, "-n", "-L", c.name) != nil {
			continue
		}
		if err := iptables(ctx, "-t", c.table, "-F", c.name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := iptables(ctx, "-t", c.table, "-X", c.name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
