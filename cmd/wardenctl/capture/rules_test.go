package capture

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/wardenmesh/warden/internal/golden"
)

func TestRulesGolden(t *testing.T) {
	custom := DefaultConfig()
	custom.ProxyGID = 0
	custom.InboundPorts = []uint32{9080, 80, 9080}
	custom.ExcludeOutboundPorts = []uint32{15012, 2379}
	custom.ExcludeOutboundCIDRs = []netip.Prefix{
		netip.MustParsePrefix("10.96.0.5/12"),
		netip.MustParsePrefix("169.254.169.254/32"),
	}
	// includeOutboundIPRanges: istio-iptables handleOutboundIncludeRules redirects only
	// the listed destinations (tools/istio-iptables/pkg/capture/run.go), "" none.
	include := DefaultConfig()
	include.ExcludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")}
	include.IncludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12")}
	none := DefaultConfig()
	none.IncludeOutboundCIDRs = []netip.Prefix{}
	cases := map[string]Config{
		"default":          DefaultConfig(),
		"ports-and-cidr":   custom,
		"include-outbound": include,
		"include-none":     none,
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := Rules(c)
			golden.Check(t, filepath.Join("testdata", name+".rules"), []byte(got))
			if again := Rules(c); again != got {
				t.Errorf("Rules is not deterministic")
			}
		})
	}
	golden.Prune(t, filepath.Join("testdata", "*.rules"))
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.InboundPort = 0 },
		func(c *Config) { c.OutboundPort = 70000 },
		func(c *Config) { c.ProxyUID = 0 },
		func(c *Config) { c.ProxyGID = -1 },
		func(c *Config) { c.ExcludeInboundPorts = []uint32{0} },
		func(c *Config) { c.ExcludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("fd00::/8")} },
		func(c *Config) { c.IncludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("fd00::/8")} },
	}
	for i, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: want an error for %+v", i, c)
		}
	}
}
