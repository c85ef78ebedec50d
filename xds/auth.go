package xds

import (
	"context"
	"errors"
	"fmt"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenmesh/warden/watch"
)

// Identity is what a proxy has proven about itself. Labels and IPs are set only when
// the credential's signer vouches for them (wardend's own bootstrap tokens); they are
// used for a pod the mesh input has no object for. Nothing in it ever comes from the
// node message a proxy sends.
type Identity struct {
	Namespace      string
	ServiceAccount string
	Pod            string
	Labels         map[string]string
	IPs            []string
}

// String names the identity for logs: "<ns>/<sa> pod <pod>".
func (i Identity) String() string {
	return i.Namespace + "/" + i.ServiceAccount + " pod " + i.Pod
}

// NodeID is the xDS node id Warden expects for this identity: "<pod>.<namespace>".
func (i Identity) NodeID() string { return i.Pod + "." + i.Namespace }

// Authenticator checks the credential a proxy sends in its stream metadata.
// Directory mode verifies wardend-signed bootstrap tokens; Kubernetes mode checks
// service-account tokens with TokenReview.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// Node metadata keys Warden's bootstrap sets (Istio's names, so tooling reads them).
const (
	MetaNamespace      = "NAMESPACE"
	MetaPodName        = "POD_NAME"
	MetaServiceAccount = "SERVICE_ACCOUNT"
	MetaLabels         = "LABELS"
	MetaInstanceIPs    = "INSTANCE_IPS"
	MetaProxyType      = "WARDEN_PROXY_TYPE" // "sidecar" or "gateway": a claim, honoured only for a gateway Pod (provenGateway)
	// How the proxy reaches wardend (its bootstrap's xDS address, server name and
	// token file): its access loggers use the same, so their stream proves the same
	// identity. Only ever used for that proxy's own configuration.
	MetaXDSAddress    = "WARDEN_XDS_ADDRESS"
	MetaXDSServerName = "WARDEN_XDS_SERVER_NAME"
	MetaTokenFile     = "WARDEN_TOKEN_FILE"
)

// errUnauthenticated is returned for streams without a usable credential.
var errUnauthenticated = errors.New("unauthenticated")

// bearerToken extracts the token from the stream's `authorization: Bearer` metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return "", fmt.Errorf("%w: no stream metadata", errUnauthenticated)
	}
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", fmt.Errorf("%w: no authorization metadata (bootstrap must come from `wardenctl bootstrap`)", errUnauthenticated)
	}
	v := vals[0]
	if !strings.HasPrefix(v, "Bearer ") {
		return "", fmt.Errorf("%w: authorization metadata is not a Bearer token", errUnauthenticated)
	}
	return strings.TrimSpace(strings.TrimPrefix(v, "Bearer ")), nil
}

// provenGateway reports whether a proxy may be served as a gateway, with Gateway
// credentialName Secrets: it claims the role (node metadata WARDEN_PROXY_TYPE, claim)
// and the Pod (or Deployment) object of its proven pod is a gateway's (label istio:
// ingressgateway or egressgateway, or annotation inject.istio.io/templates: gateway:
// watch.Workload.Gateway). The claim alone is node
// metadata any proxy writes. Translation decides the same way
// (translate.Index.ServesGateway); this is checked again before credentials are
// chosen, so that neither check alone hands a sidecar a gateway's key.
func provenGateway(in *watch.Input, id Identity, claim bool) bool {
	if !claim || in == nil {
		return false
	}
	w := in.WorkloadByPod(id.Namespace, id.Pod)
	return w != nil && w.Gateway
}

// nodeInfo is what a proxy's node message claims.
type nodeInfo struct {
	ID             string
	Namespace      string
	Pod            string
	ServiceAccount string
	Labels         map[string]string
	IPs            []string
	Gateway        bool
	EnvoyVersion   string
	// XDSAddress, XDSServerName and TokenFile are how the proxy reaches wardend.
	XDSAddress, XDSServerName, TokenFile string
}

func parseNode(n *core.Node) nodeInfo {
	ni := nodeInfo{ID: n.GetId(), Labels: map[string]string{}}
	md := n.GetMetadata().GetFields()
	str := func(k string) string {
		if v, ok := md[k]; ok {
			return v.GetStringValue()
		}
		return ""
	}
	ni.Namespace, ni.Pod, ni.ServiceAccount = str(MetaNamespace), str(MetaPodName), str(MetaServiceAccount)
	ni.Gateway = str(MetaProxyType) == "gateway"
	ni.XDSAddress, ni.XDSServerName, ni.TokenFile = str(MetaXDSAddress), str(MetaXDSServerName), str(MetaTokenFile)
	if l, ok := md[MetaLabels]; ok {
		for k, v := range l.GetStructValue().GetFields() {
			ni.Labels[k] = v.GetStringValue()
		}
	}
	if ips := str(MetaInstanceIPs); ips != "" {
		ni.IPs = strings.Split(ips, ",")
	}
	if bv := n.GetUserAgentBuildVersion(); bv != nil && bv.GetVersion() != nil {
		v := bv.GetVersion()
		ni.EnvoyVersion = fmt.Sprintf("%d.%d.%d", v.GetMajorNumber(), v.GetMinorNumber(), v.GetPatch())
	} else if uv := n.GetUserAgentVersion(); uv != "" {
		ni.EnvoyVersion = uv
	}
	return ni
}

// checkNode rejects node metadata that contradicts the proven identity.
func checkNode(id Identity, ni nodeInfo) error {
	var bad []string
	if ni.ID != id.NodeID() {
		bad = append(bad, fmt.Sprintf("node id %q, want %q", ni.ID, id.NodeID()))
	}
	for _, c := range []struct{ key, got, want string }{
		{MetaNamespace, ni.Namespace, id.Namespace},
		{MetaPodName, ni.Pod, id.Pod},
		{MetaServiceAccount, ni.ServiceAccount, id.ServiceAccount},
	} {
		if c.got != "" && c.got != c.want {
			bad = append(bad, fmt.Sprintf("metadata %s %q, want %q", c.key, c.got, c.want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("node metadata contradicts the proxy's token (identity %s/%s, pod %s): %s",
			id.Namespace, id.ServiceAccount, id.Pod, strings.Join(bad, "; "))
	}
	return nil
}

// NodeMetadata builds the node metadata Warden's bootstrap carries.
func NodeMetadata(id Identity, labels map[string]string, ips []string, gateway bool) (*structpb.Struct, error) {
	l := map[string]any{}
	for k, v := range labels {
		l[k] = v
	}
	typ := "sidecar"
	if gateway {
		typ = "gateway"
	}
	return structpb.NewStruct(map[string]any{
		MetaNamespace:      id.Namespace,
		MetaPodName:        id.Pod,
		MetaServiceAccount: id.ServiceAccount,
		MetaLabels:         l,
		MetaInstanceIPs:    strings.Join(ips, ","),
		MetaProxyType:      typ,
	})
}
