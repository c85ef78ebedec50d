package translate

import (
	"time"

	"github.com/wardenmesh/warden/internal/protoany"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

// connectTimeout is the upstream connect timeout of every cluster.
const connectTimeout = 10 * time.Second

// builder carries what the constructors of one translation share: the input, the
// first marshalling error, whether SDS secrets were referenced, and diagnostics.
type builder struct {
	x       *Index
	in      *watch.Input
	err     error
	secrets bool
	// credentials are the kubernetes://<credentialName> SDS names gateway servers and
	// DestinationRule TLS origination use.
	credentials []string
	// credNS is the namespace whose Secrets a DestinationRule's credentialName names:
	// the client proxy's (set when a cluster is built for one namespace, see clusterKey).
	credNS   string
	refusing bool // a gateway chain refuses connections (needs BlackHoleCluster)
	// trustedHops is a gateway's xff_num_trusted_hops (gatewayTopology), set once.
	trustedHops uint32
	diags       []watch.Diagnostic
	// w is the workload whose inbound side is built (nil for shared outbound
	// builders); authz its AuthorizationPolicies, resolved on first use.
	w     *watch.Workload
	authz *authz.Set
}

func newBuilder(x *Index) *builder { return &builder{x: x, in: x.in} }

// any packs msg for a typed_config; a failure is kept in b.err.
func (b *builder) any(msg proto.Message) *anypb.Any { return protoany.Must(&b.err, msg) }

func (b *builder) diag(severity string, m *watch.Meta, field, format string) {
	b.diags = append(b.diags, watch.DiagnosticFor(m, severity, field, format))
}

func boolValue(v bool) *wrapperspb.BoolValue { return wrapperspb.Bool(v) }

func duration(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func socketAddress(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address:       ip,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}
