package xds

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/translate/authz"
)

// AuthzCheckResponse is the body of /debug/authz.
type AuthzCheckResponse struct {
	InputVersion string             `json:"inputVersion"`
	Request      authz.CheckRequest `json:"request"`
	Result       authz.CheckResult  `json:"result"`
}

// AuthzQuery encodes a check of proxy ("<pod>.<namespace>") as /debug/authz query
// parameters; ParseAuthzQuery reads them back.
func AuthzQuery(proxy string, req authz.CheckRequest) (url.Values, error) {
	q := url.Values{"proxy": {proxy}}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("fromPod", req.FromPod)
	set("principal", req.Principal)
	set("sourceIP", req.SourceIP)
	set("remoteIP", req.RemoteIP)
	set("method", req.Method)
	set("path", req.Path)
	set("host", req.Host)
	set("sni", req.SNI)
	if req.Port != 0 {
		q.Set("port", strconv.FormatUint(uint64(req.Port), 10))
	}
	for k, v := range req.Headers {
		q.Add("header", k+"="+v)
	}
	if req.Claims != nil {
		b, err := json.Marshal(req.Claims)
		if err != nil {
			return nil, fmt.Errorf("encode claims: %w", err)
		}
		q.Set("claims", string(b))
	}
	return q, nil
}

// ParseAuthzQuery reads the parameters AuthzQuery writes.
func ParseAuthzQuery(q url.Values) (string, authz.CheckRequest, error) {
	proxy := q.Get("proxy")
	if _, _, ok := strings.Cut(proxy, "."); !ok {
		return "", authz.CheckRequest{}, fmt.Errorf("proxy=%q: want <pod>.<namespace>", proxy)
	}
	req := authz.CheckRequest{
		FromPod: q.Get("fromPod"), Principal: q.Get("principal"), SourceIP: q.Get("sourceIP"),
		RemoteIP: q.Get("remoteIP"), Method: q.Get("method"), Path: q.Get("path"), Host: q.Get("host"), SNI: q.Get("sni"),
	}
	if p := q.Get("port"); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return "", req, fmt.Errorf("port=%q: %w", p, err)
		}
		req.Port = uint32(n)
	}
	for _, h := range q["header"] {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return "", req, fmt.Errorf("header=%q: want name=value", h)
		}
		if req.Headers == nil {
			req.Headers = map[string]string{}
		}
		req.Headers[k] = v
	}
	if c := q.Get("claims"); c != "" {
		if err := json.Unmarshal([]byte(c), &req.Claims); err != nil {
			return "", req, fmt.Errorf("claims: not a JSON object: %w", err)
		}
	}
	return proxy, req, nil
}

// AuthzCheckHandler serves /debug/authz?proxy=<pod>.<namespace>&...: it evaluates the
// AuthorizationPolicies of that proxy for the described request, with the same
// compiled policies its RBAC filters were built from, and explains the decision.
func (s *Server) AuthzCheckHandler(w http.ResponseWriter, r *http.Request) {
	proxy, req, err := ParseAuthzQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod, ns, _ := strings.Cut(proxy, ".")
	s.mu.Lock()
	x, in := s.index, s.input
	p := s.proxies[proxy]
	s.mu.Unlock()
	if x == nil {
		http.Error(w, "no configuration loaded yet", http.StatusServiceUnavailable)
		return
	}
	tp := translate.Proxy{ID: proxy, Namespace: ns, Pod: pod}
	if p != nil {
		tp.ServiceAccount, tp.Labels, tp.Gateway = p.ident.ServiceAccount, p.node.Labels, p.node.Gateway
		if len(p.node.IPs) > 0 {
			tp.IP = p.node.IPs[0]
		}
	} else if in.WorkloadByPod(ns, pod) == nil {
		http.Error(w, "unknown proxy "+proxy+": not connected and no such pod in the configuration", http.StatusNotFound)
		return
	}
	writeJSON(w, AuthzCheckResponse{InputVersion: in.Version, Request: req, Result: x.Check(tp, req)})
}
