package scenario

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// PodRef names a workload (a Deployment or a bare Pod) as `namespace/name`.
type PodRef struct {
	Namespace string
	Name      string
}

func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// ParsePodRef parses `namespace/name`.
func ParsePodRef(s string) (PodRef, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return PodRef{}, fmt.Errorf("%q: want namespace/name", s)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return PodRef{}, fmt.Errorf("%q: namespace %q: %s", s, ns, errs[0])
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return PodRef{}, fmt.Errorf("%q: name %q: %s", s, name, errs[0])
	}
	return PodRef{Namespace: ns, Name: name}, nil
}

// ParsePodPort parses `namespace/name:port`, the form of Request.To.
func ParsePodPort(s string) (PodRef, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return PodRef{}, 0, fmt.Errorf("%q: want namespace/name:port", s)
	}
	ref, err := ParsePodRef(s[:i])
	if err != nil {
		return PodRef{}, 0, fmt.Errorf("%q: want namespace/name:port: %w", s, err)
	}
	port, err := parsePort(s[i+1:])
	if err != nil {
		return PodRef{}, 0, fmt.Errorf("%q: %w", s, err)
	}
	return ref, port, nil
}

// ParseHostPort parses `host:port`, the form of Request.TCP and PeerCert.To.
func ParseHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want host:port", s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: empty host", s)
	}
	port, err := parsePort(p)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	return host, port, nil
}

func parsePort(s string) (int, error) {
	port, err := strconv.Atoi(s)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != s {
		return 0, fmt.Errorf("port %q: want a number from 1 to 65535", s)
	}
	return port, nil
}
