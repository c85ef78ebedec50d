// Package xds serves Envoy over ADS (SotW and delta): it authenticates each proxy's
// stream, builds a per-proxy snapshot from translate's output plus SDS secrets minted
// by certs, pushes only to proxies whose output changed, and tracks what every proxy
// has acknowledged so that `wardenctl status` can say whether it runs what Warden
// intends.
package xds
