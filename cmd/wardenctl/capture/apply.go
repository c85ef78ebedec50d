package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Validate reports whether the configuration can be installed.
func (c Config) Validate() error {
	var errs []error
	if c.InboundPort == 0 || c.InboundPort > 65535 {
		errs = append(errs, fmt.Errorf("inbound port %d out of range", c.InboundPort))
	}
	if c.OutboundPort == 0 || c.OutboundPort > 65535 {
		errs = append(errs, fmt.Errorf("outbound port %d out of range", c.OutboundPort))
	}
	if c.ProxyUID <= 0 {
		errs = append(errs, fmt.Errorf("proxy uid %d: must be a non-root uid", c.ProxyUID))
	}
	if c.ProxyGID < 0 {
		errs = append(errs, fmt.Errorf("proxy gid %d: must not be negative", c.ProxyGID))
	}
	for _, list := range [][]uint32{c.InboundPorts, c.ExcludeInboundPorts, c.ExcludeOutboundPorts} {
		for _, p := range list {
			if p == 0 || p > 65535 {
				errs = append(errs, fmt.Errorf("port %d out of range", p))
			}
		}
	}
	for _, p := range c.ExcludeOutboundCIDRs {
		if !p.IsValid() || !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("excluded cidr %q: only IPv4 prefixes are captured", p))
		}
	}
	for _, p := range c.IncludeOutboundCIDRs {
		if !p.IsValid() || !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("included cidr %q: only IPv4 prefixes are captured", p))
		}
	}
	return errors.Join(errs...)
}

// Apply installs the capture rules in the current network namespace, replacing any
// earlier Warden rules and leaving everything else in the nat table as it is.
func Apply(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("capture config: %w", err)
	}
	if err := Remove(ctx); err != nil {
		return err
	}
	if err := run(ctx, strings.NewReader(Rules(c)), "iptables-restore", "--noflush"); err != nil {
		return fmt.Errorf("install capture rules: %w", err)
	}
	return nil
}

// Remove deletes Warden's capture chains and the jumps to them from the current network
// namespace. Removing rules that are not there is not an error; failing to read the nat
// table is (a broken iptables must not look like "nothing installed", or Apply would
// add its rules a second time).
func Remove(ctx context.Context) error {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "iptables-save", "-t", "nat")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("iptables-save not found (run `make deps`): %w", err)
		}
		return fmt.Errorf("read the nat table: iptables-save: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	jumps, chains := installed(out.String())
	for _, j := range jumps {
		if err := run(ctx, nil, "iptables", append([]string{"-t", "nat", "-D"}, j...)...); err != nil {
			return fmt.Errorf("remove capture jump from %s: %w", j[0], err)
		}
	}
	for _, ch := range chains {
		if err := run(ctx, nil, "iptables", "-t", "nat", "-F", ch); err != nil {
			return fmt.Errorf("flush chain %s: %w", ch, err)
		}
	}
	for _, ch := range chains {
		if err := run(ctx, nil, "iptables", "-t", "nat", "-X", ch); err != nil {
			return fmt.Errorf("delete chain %s: %w", ch, err)
		}
	}
	return nil
}

// installed returns, from `iptables-save -t nat` output, each jump into Warden's chains
// from the other chains (once per copy: a rule may have been added more than once) and
// which of Warden's chains exist.
func installed(save string) (jumps [][]string, chains []string) {
	ours := map[string]bool{ChainInbound: true, ChainInRedirect: true, ChainOutput: true, ChainRedirect: true}
	for _, line := range strings.Split(save, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":") && ours[f[0][1:]]:
			chains = append(chains, f[0][1:])
		case len(f) >= 4 && f[0] == "-A" && !ours[f[1]] && f[len(f)-2] == "-j" && ours[f[len(f)-1]]:
			jumps = append(jumps, f[1:])
		}
	}
	return jumps, chains
}

// run executes one iptables command and folds its output into the error.
func run(ctx context.Context, stdin *strings.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s not found (run `make deps`): %w", name, err)
		}
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
