package xds

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wardenmesh/warden/translate"
)

// MTLSzResponse is the body of /debug/mtlsz: the effective inbound mTLS of every
// workload, as translation serves it.
type MTLSzResponse struct {
	InputVersion string                   `json:"inputVersion"`
	Workloads    []translate.WorkloadMTLS `json:"workloads"`
}

// errNoInput is returned before the first configuration is loaded.
var errNoInput = errors.New("no configuration loaded yet")

// registerViews serves /debug/mtlsz?namespace=NS (all namespaces when empty) and
// /debug/describe?pod=POD.NS, both JSON.
func (s *Server) registerViews(mux *http.ServeMux) {
	mux.HandleFunc("/debug/mtlsz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.MTLSView(r.URL.Query().Get("namespace"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, resp)
	})
	mux.HandleFunc("/debug/describe", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("pod")
		d, err := s.Describe(id)
		switch {
		case errors.Is(err, errNoInput):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, err.Error(), http.StatusNotFound)
		default:
			writeJSON(w, d)
		}
	})
}

// MTLSView is the mTLS row of every workload of namespace (every namespace when
// empty): the workloads of the input, and every connected proxy resolved with the
// labels it connected with, marked connected.
func (s *Server) MTLSView(namespace string) (MTLSzResponse, error) {
	version, x, proxies := s.viewState()
	if x == nil {
		return MTLSzResponse{}, errNoInput
	}
	rows := translate.MTLSView(x)
	byID := make(map[string]int, len(rows))
	for i, r := range rows {
		byID[r.Name+"."+r.Namespace] = i
	}
	for id, p := range proxies {
		row := translate.ProxyMTLS(x, p.proxy)
		row.Connected = true
		if i, ok := byID[id]; ok {
			rows[i] = row
		} else {
			rows = append(rows, row)
		}
	}
	out := MTLSzResponse{InputVersion: version, Workloads: []translate.WorkloadMTLS{}}
	for _, r := range rows {
		if namespace == "" || r.Namespace == namespace {
			out.Workloads = append(out.Workloads, r)
		}
	}
	translate.SortMTLSView(out.Workloads)
	return out, nil
}

// Describe describes the workload "<pod>.<namespace>": as its connected proxy is
// served (with the certificate it gets) when connected, else from the input.
func (s *Server) Describe(id string) (translate.WorkloadDescription, error) {
	_, x, proxies := s.viewState()
	if x == nil {
		return translate.WorkloadDescription{}, errNoInput
	}
	if p, ok := proxies[id]; ok {
		d := translate.DescribeProxy(x, p.proxy)
		d.Connected = true
		cert, err := s.certificate(p.ident)
		if err != nil {
			return d, fmt.Errorf("certificate of %s: %w", id, err)
		}
		d.Certificate = cert
		return d, nil
	}
	i := strings.LastIndexByte(id, '.')
	if i <= 0 || i == len(id)-1 {
		return translate.WorkloadDescription{}, fmt.Errorf("pod %q: want <pod>.<namespace>", id)
	}
	return translate.Describe(x, id[i+1:], id[:i])
}

// viewProxy is one connected proxy as translation sees it.
type viewProxy struct {
	proxy translate.Proxy
	ident Identity
}

// viewState is the current input's version, its index and the connected proxies by
// node id; the index is nil before the first input.
func (s *Server) viewState() (string, *translate.Index, map[string]viewProxy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		return "", nil, nil
	}
	proxies := make(map[string]viewProxy, len(s.proxies))
	for id, p := range s.proxies {
		proxies[id] = viewProxy{proxy: translateProxy(id, p), ident: p.ident}
	}
	return s.input.Version, s.index, proxies
}

// translateProxy is the translate.Proxy of a connected proxy, as rebuild makes it.
func translateProxy(id string, p *proxy) translate.Proxy {
	tp := translate.Proxy{ID: id, Namespace: p.ident.Namespace, Pod: p.ident.Pod, ServiceAccount: p.ident.ServiceAccount,
		Labels: p.node.Labels, Gateway: p.node.Gateway}
	if len(p.node.IPs) > 0 {
		tp.IP = p.node.IPs[0]
	}
	return tp
}

// certificate describes the workload certificate served to ident (the one SDS
// carries); key material never leaves this function.
func (s *Server) certificate(ident Identity) (*translate.Certificate, error) {
	sec, err := s.opts.Secrets.WorkloadSecret(ident)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(sec.CertChainPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("served certificate chain holds no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse served certificate: %w", err)
	}
	return &translate.Certificate{Serial: c.SerialNumber.Text(16), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}, nil
}
