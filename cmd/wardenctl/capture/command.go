package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// flags holds the command-line form of a Config.
type flags struct {
	inboundPort, outboundPort uint32
	uid, gid                  int
	inboundPorts              string
	excludeIn, excludeOut     []string
	excludeCIDRs              []string
	includeCIDRs              string
}

// NewCommand returns the `capture` command with its `print`, `apply` and `remove`
// subcommands.
func NewCommand() *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Print, install or remove the iptables rules that send a pod's traffic through its sidecar",
	}
	d := DefaultConfig()
	pf := cmd.PersistentFlags()
	pf.Uint32Var(&f.inboundPort, "inbound-port", d.InboundPort, "proxy port that receives captured inbound traffic")
	pf.Uint32Var(&f.outboundPort, "outbound-port", d.OutboundPort, "proxy port that receives captured outbound traffic")
	pf.IntVar(&f.uid, "proxy-uid", d.ProxyUID, "uid of the proxy; its traffic is not captured")
	pf.IntVar(&f.gid, "proxy-gid", d.ProxyGID, "gid of the proxy; its traffic is not captured (0: no gid rule)")
	pf.StringVar(&f.inboundPorts, "inbound-ports", "*", `inbound ports to capture: "*" or a comma-separated list`)
	pf.StringSliceVar(&f.excludeIn, "exclude-inbound-ports", portStrings(d.ExcludeInboundPorts), "inbound ports never captured")
	pf.StringSliceVar(&f.excludeOut, "exclude-outbound-ports", portStrings(d.ExcludeOutboundPorts), "outbound ports never captured")
	pf.StringSliceVar(&f.excludeCIDRs, "exclude-outbound-cidrs", nil, "outbound destinations (IPv4 CIDRs) never captured")
	pf.StringVar(&f.includeCIDRs, "include-outbound-cidrs", "*", `outbound destinations captured after the exclusions: "*", a comma-separated list of IPv4 CIDRs, or "" for none`)

	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the rules as iptables-restore input",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.config()
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), Rules(c))
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "apply",
		Short: "Install the rules in the current network namespace (needs NET_ADMIN)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.config()
			if err != nil {
				return err
			}
			return Apply(cmd.Context(), c)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "remove",
		Short: "Remove the rules from the current network namespace (needs NET_ADMIN)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Remove(cmd.Context())
		},
	})
	return cmd
}

// config turns the flags into a validated Config.
func (f *flags) config() (Config, error) {
	c := Config{
		InboundPort:  f.inboundPort,
		OutboundPort: f.outboundPort,
		ProxyUID:     f.uid,
		ProxyGID:     f.gid,
	}
	var err error
	if strings.TrimSpace(f.inboundPorts) != "*" {
		if c.InboundPorts, err = parsePorts(strings.Split(f.inboundPorts, ",")); err != nil {
			return Config{}, fmt.Errorf("--inbound-ports: %w", err)
		}
		if len(c.InboundPorts) == 0 {
			return Config{}, fmt.Errorf(`--inbound-ports: give "*" or at least one port`)
		}
	}
	if c.ExcludeInboundPorts, err = parsePorts(f.excludeIn); err != nil {
		return Config{}, fmt.Errorf("--exclude-inbound-ports: %w", err)
	}
	if c.ExcludeOutboundPorts, err = parsePorts(f.excludeOut); err != nil {
		return Config{}, fmt.Errorf("--exclude-outbound-ports: %w", err)
	}
	for _, s := range f.excludeCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return Config{}, fmt.Errorf("--exclude-outbound-cidrs: %w", err)
		}
		c.ExcludeOutboundCIDRs = append(c.ExcludeOutboundCIDRs, p)
	}
	if inc := strings.TrimSpace(f.includeCIDRs); inc != "*" {
		c.IncludeOutboundCIDRs = []netip.Prefix{}
		for _, s := range strings.Split(inc, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return Config{}, fmt.Errorf("--include-outbound-cidrs: %w", err)
			}
			c.IncludeOutboundCIDRs = append(c.IncludeOutboundCIDRs, p)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func parsePorts(items []string) ([]uint32, error) {
	var out []uint32
	for _, s := range items {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("invalid port %q", s)
		}
		out = append(out, uint32(p))
	}
	return out, nil
}

func portStrings(ports []uint32) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = strconv.FormatUint(uint64(p), 10)
	}
	return out
}
