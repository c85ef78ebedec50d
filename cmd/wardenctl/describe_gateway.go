package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/wardenmesh/warden/translate"
)

// printGatewayServers shows each server of a gateway: port, hosts, TLS mode, the
// certificate it presents (source Secret, serial, expiry, SANs; never key material)
// and what its bound VirtualServices route to.
func printGatewayServers(w io.Writer, servers []translate.GatewayServerView) {
	section(w, "Gateway servers", len(servers))
	for _, s := range servers {
		name := s.PortName
		if name == "" {
			name = "-"
		}
		mode := s.TLSMode
		switch {
		case mode == "" && s.HTTPSRedirect:
			mode = "plaintext, redirects to https"
		case mode == "":
			mode = "plaintext"
		}
		fmt.Fprintf(w, "  %d %s (%s %s): %s %s, hosts %s\n", s.Port, name, s.Gateway, s.Field, s.Protocol, mode, strings.Join(s.Hosts, ", "))
		if c := s.Certificate; c != nil {
			what := c.Source
			if c.SDS != "" {
				what += " (SDS " + c.SDS + ")"
			}
			switch {
			case c.Error != "":
				what += ": not served: " + c.Error
			case c.Leaf != nil:
				what += ": serial " + c.Leaf.Serial + ", expires " + c.Leaf.NotAfter.Format(time.RFC3339)
				if sans := append(slices.Clone(c.Leaf.DNSNames), c.Leaf.URIs...); len(sans) > 0 {
					what += ", SANs " + strings.Join(sans, ", ")
				}
			}
			fmt.Fprintf(w, "    certificate: %s\n", what)
		}
		if s.ClientCA != "" {
			fmt.Fprintf(w, "    client CA:   %s\n", s.ClientCA)
		}
		if s.Refused != "" {
			fmt.Fprintf(w, "    REFUSES CONNECTIONS: %s\n", s.Refused)
		}
		if len(s.Routes) == 0 {
			fmt.Fprintf(w, "    routes:      (none)\n")
		}
		for _, r := range s.Routes {
			dests := strings.Join(r.Destinations, ", ")
			if dests == "" {
				dests = "(no destination)"
			}
			fmt.Fprintf(w, "    route:       %s %s %s -> %s\n", r.Kind, r.VirtualService, strings.Join(r.Hosts, ","), dests)
		}
	}
}
