package xds

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	alsdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/translate"
)

// Dynamic metadata the RBAC filters write. Warden's dry-run filters prefix their shadow
// keys (translate/authz: istio_dry_run_allow_ / istio_dry_run_deny_), as Istio does.
const (
	rbacHTTPNamespace    = "envoy.filters.http.rbac"
	rbacNetworkNamespace = "envoy.filters.network.rbac"
	dryRunAllowKey       = "istio_dry_run_allow_"
	dryRunDenyKey        = "istio_dry_run_deny_"
	rbacDeniedDetail     = "rbac_access_denied_matched_policy["
	// NoAllowMatched names the decision of an ALLOW policy set that matched nothing.
	NoAllowMatched = "no ALLOW policy matched"
	// Plaintext is the peer of a connection without mesh mTLS.
	Plaintext = "plaintext"
)

// AccessEntry is one access log entry a proxy sent, attributed to the identity its
// stream proved (never to what the entry itself claims).
type AccessEntry struct {
	Time      time.Time `json:"time"`
	Proxy     string    `json:"proxy"` // <pod>.<namespace>, proven
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Protocol  string    `json:"protocol"` // HTTP or TCP
	// Denied is set for a request or connection an enforced RBAC filter denied;
	// Policy then names the deciding rule (ns[..]-policy[..]-rule[..]) or NoAllowMatched.
	Denied bool   `json:"denied,omitempty"`
	Policy string `json:"policy,omitempty"`
	// DryRunDenied is set when a dry-run policy would have denied it; DryRunPolicy
	// names the dry-run DENY rule that matched, or NoAllowMatched.
	DryRunDenied bool     `json:"dryRunDenied,omitempty"`
	DryRunPolicy string   `json:"dryRunPolicy,omitempty"`
	Details      string   `json:"details,omitempty"` // response code / connection termination details
	Flags        []string `json:"flags,omitempty"`
	Peer         string   `json:"peer"` // the caller's URI SAN, or "plaintext"
	Source       string   `json:"source"`
	Destination  string   `json:"destination"`
	Port         uint32   `json:"port"`
	FilterChain  string   `json:"filterChain,omitempty"`
	Method       string   `json:"method,omitempty"`
	Authority    string   `json:"authority,omitempty"`
	Path         string   `json:"path,omitempty"`
	Status       uint32   `json:"status,omitempty"`
}

// size approximates the bytes an entry holds in the window.
func (e *AccessEntry) size() int {
	n := 160 + len(e.Proxy) + len(e.Namespace) + len(e.Pod) + len(e.Policy) + len(e.DryRunPolicy) + len(e.Details) +
		len(e.Peer) + len(e.Source) + len(e.Destination) + len(e.FilterChain) + len(e.Method) + len(e.Authority) + len(e.Path)
	for _, f := range e.Flags {
		n += len(f) + 16
	}
	return n
}

// Longest values kept from an entry; Envoy's own limits are larger.
const (
	maxEntryField = 512
)

func clip(s string) string {
	if len(s) > maxEntryField {
		return s[:maxEntryField]
	}
	return s
}

// FilterChainTag is the custom tag translate sets on every access logger: the name
// of the filter chain that handled the connection.
const FilterChainTag = translate.FilterChainTagKey

// alsService is Envoy's gRPC access log service on wardend's xDS port. A stream must
// prove its identity exactly like an xDS stream (bearer token), its first message must
// name the node that identity belongs to, and every entry is attributed to that node.
type alsService struct {
	alsv3.UnimplementedAccessLogServiceServer
	s *Server
}

func (a alsService) StreamAccessLogs(st alsv3.AccessLogService_StreamAccessLogsServer) error {
	s := a.s
	ctx := st.Context()
	remote := remoteAddr(ctx)
	tok, err := bearerToken(ctx)
	var id Identity
	if err == nil {
		id, err = s.opts.Auth.Authenticate(ctx, tok)
	}
	if err != nil {
		s.opts.Metrics.authFails.Inc()
		s.alsRefused(remote, err)
		return status.Error(codes.Unauthenticated, err.Error())
	}
	bound := false
	for {
		msg, err := st.Recv()
		if err == io.EOF {
			return st.SendAndClose(&alsv3.StreamAccessLogsResponse{})
		}
		if err != nil {
			return err
		}
		if n := msg.GetIdentifier().GetNode(); n != nil {
			if err := checkNode(id, parseNode(n)); err != nil {
				s.alsWindow().countRejected()
				s.alsRefused(remote, err)
				return status.Error(codes.PermissionDenied, err.Error())
			}
			bound = true
		}
		if !bound {
			s.alsWindow().countRejected()
			return status.Error(codes.InvalidArgument, "the first access log message must carry the node identifier")
		}
		if err := s.alsPace(ctx, len(msg.GetHttpLogs().GetLogEntry())+len(msg.GetTcpLogs().GetLogEntry())); err != nil {
			return err
		}
		now := s.opts.Now()
		for _, e := range msg.GetHttpLogs().GetLogEntry() {
			s.alsWindow().add(httpEntry(id, now, e))
		}
		for _, e := range msg.GetTcpLogs().GetLogEntry() {
			s.alsWindow().add(tcpEntry(id, now, e))
		}
	}
}

func (s *Server) alsRefused(remote string, err error) {
	if ok, dropped := s.logLimit.Allow("als " + hostOf(remote)); ok {
		s.log.Warn("access log stream rejected", "remote", remote,
			"err", Truncate(err.Error(), maxLoggedError), "suppressedSinceLast", dropped)
	}
}

func commonEntry(id Identity, now time.Time, cp *alsdata.AccessLogCommon) AccessEntry {
	e := AccessEntry{Time: now, Proxy: id.NodeID(), Namespace: id.Namespace, Pod: id.Pod, Peer: Plaintext}
	if t := cp.GetStartTime(); t != nil {
		e.Time = t.AsTime()
	}
	e.Source = addrString(cp.GetDownstreamRemoteAddress())
	e.Destination = addrString(cp.GetDownstreamLocalAddress())
	e.Port = cp.GetDownstreamLocalAddress().GetSocketAddress().GetPortValue()
	if peer := cp.GetTlsProperties().GetPeerCertificateProperties(); peer != nil {
		for _, san := range peer.GetSubjectAltName() {
			if u := san.GetUri(); u != "" {
				e.Peer = clip(u)
				break
			}
		}
	}
	if tag, ok := cp.GetCustomTags()[FilterChainTag]; ok {
		e.FilterChain = clip(tag)
	}
	e.Flags = responseFlags(cp.GetResponseFlags())
	return e
}

func httpEntry(id Identity, now time.Time, he *alsdata.HTTPAccessLogEntry) AccessEntry {
	cp := he.GetCommonProperties()
	e := commonEntry(id, now, cp)
	e.Protocol = "HTTP"
	e.Method = he.GetRequest().GetRequestMethod().String()
	e.Authority = clip(he.GetRequest().GetAuthority())
	e.Path = clip(he.GetRequest().GetPath())
	e.Status = he.GetResponse().GetResponseCode().GetValue()
	e.Details = clip(he.GetResponse().GetResponseCodeDetails())
	decide(&e, cp.GetMetadata().GetFilterMetadata()[rbacHTTPNamespace])
	return e
}

func tcpEntry(id Identity, now time.Time, te *alsdata.TCPAccessLogEntry) AccessEntry {
	cp := te.GetCommonProperties()
	e := commonEntry(id, now, cp)
	e.Protocol = "TCP"
	e.Details = clip(cp.GetConnectionTerminationDetails())
	decide(&e, cp.GetMetadata().GetFilterMetadata()[rbacNetworkNamespace])
	return e
}

// decide reads the enforced decision from the details ("rbac_access_denied_matched_policy[<id>]",
// <id> "none" when no ALLOW policy matched) and the dry-run decision from the RBAC
// filters' shadow metadata.
func decide(e *AccessEntry, md *structpb.Struct) {
	if i := strings.Index(e.Details, rbacDeniedDetail); i >= 0 {
		id := strings.TrimSuffix(e.Details[i+len(rbacDeniedDetail):], "]")
		e.Denied, e.Policy = true, id
		if id == "none" {
			e.Policy = NoAllowMatched
		}
	}
	f := md.GetFields()
	str := func(k string) string { return f[k].GetStringValue() }
	if str(dryRunDenyKey+"shadow_engine_result") == "denied" {
		e.DryRunDenied, e.DryRunPolicy = true, clip(str(dryRunDenyKey+"shadow_effective_policy_id"))
	} else if str(dryRunAllowKey+"shadow_engine_result") == "denied" {
		e.DryRunDenied, e.DryRunPolicy = true, NoAllowMatched
	}
}

func addrString(a *core.Address) string {
	sa := a.GetSocketAddress()
	if sa == nil {
		return ""
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
}

// responseFlags names the set flags with Envoy's short codes (%RESPONSE_FLAGS%).
func responseFlags(f *alsdata.ResponseFlags) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, c := range []struct {
		set  bool
		code string
	}{
		{f.GetFailedLocalHealthcheck(), "LH"}, {f.GetNoHealthyUpstream(), "UH"}, {f.GetUpstreamRequestTimeout(), "UT"},
		{f.GetLocalReset(), "LR"}, {f.GetUpstreamRemoteReset(), "UR"}, {f.GetUpstreamConnectionFailure(), "UF"},
		{f.GetUpstreamConnectionTermination(), "UC"}, {f.GetUpstreamOverflow(), "UO"}, {f.GetNoRouteFound(), "NR"},
		{f.GetRateLimited(), "RL"}, {f.GetUnauthorizedDetails() != nil, "UAEX"}, {f.GetDownstreamConnectionTermination(), "DC"},
		{f.GetStreamIdleTimeout(), "SI"}, {f.GetDownstreamProtocolError(), "DPE"}, {f.GetNoClusterFound(), "NC"},
		{f.GetDownstreamRemoteReset(), "DR"},
	} {
		if c.set {
			out = append(out, c.code)
		}
	}
	return out
}

// String is one line for logs and text output.
func (e *AccessEntry) String() string {
	return fmt.Sprintf("%s %s %s -> %s", e.Time.Format(time.RFC3339), e.Proxy, e.Peer, e.Destination)
}

// accessLogSink is where a proxy's access loggers send: wardend, reached as the
// proxy's bootstrap reaches xDS. Nil (no access logs to wardend) when access logs are
// off, the bootstrap predates them, or no mesh root is known.
func (s *Server) accessLogSink(n nodeInfo) *translate.AccessLogSink {
	if s.opts.NoAccessLogs || n.XDSAddress == "" || n.TokenFile == "" {
		return nil
	}
	r, ok := s.opts.Secrets.(interface{ RootPEM() []byte })
	if !ok {
		return nil
	}
	return &translate.AccessLogSink{Target: n.XDSAddress, ServerName: n.XDSServerName, RootPEM: r.RootPEM(), TokenFile: n.TokenFile}
}

// RootPEM is the mesh root the access loggers trust for wardend.
func (c *CertSecrets) RootPEM() []byte { return c.CA.RootPEM() }

// DefaultAccessLogRate is how many access log entries per second wardend reads at most,
// over all streams: far more than the denials and plaintext requests of a mesh.
const DefaultAccessLogRate = 10000

// alsBurst is the most entries read at once (Envoy sends a few hundred per message).
const alsBurst = 1000

func newALSLimiter(perSecond float64) *rate.Limiter {
	switch {
	case perSecond < 0:
		return rate.NewLimiter(rate.Inf, alsBurst)
	case perSecond == 0:
		perSecond = DefaultAccessLogRate
	}
	return rate.NewLimiter(rate.Limit(perSecond), alsBurst)
}

// alsPace waits until n more entries fit the access log rate: the stream is not read
// meanwhile, so its sender is held back by flow control.
func (s *Server) alsPace(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, alsBurst)
		if err := s.alsLimit.WaitN(ctx, k); err != nil {
			return status.FromContextError(err).Err()
		}
		n -= k
	}
	return nil
}
