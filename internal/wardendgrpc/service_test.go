package wardendgrpc

import (
	"testing"

	grpccred "github.com/envoyproxy/go-control-plane/envoy/config/grpc_credential/v3"
)

// The channel to wardend trusts only the given root, pins wardend's name whatever
// address reaches it, and sends the token file as a bearer token on every stream.
func TestServicePinsRootNameAndToken(t *testing.T) {
	svc, err := Service(Channel{Target: "10.0.0.1:15012", StatPrefix: "x", ServerName: "wardend.warden-system.svc",
		RootPEM: []byte("ROOT"), TokenFile: "/run/token", IntArgs: map[string]int64{"grpc.keepalive_time_ms": 30000}})
	if err != nil {
		t.Fatal(err)
	}
	g := svc.GetGoogleGrpc()
	if g.GetTargetUri() != "10.0.0.1:15012" || g.GetStatPrefix() != "x" {
		t.Errorf("target %q, stat prefix %q", g.GetTargetUri(), g.GetStatPrefix())
	}
	if got := string(g.GetChannelCredentials().GetSslCredentials().GetRootCerts().GetInlineBytes()); got != "ROOT" {
		t.Errorf("trusted roots %q, want only the mesh root", got)
	}
	args := g.GetChannelArgs().GetArgs()
	if got := args["grpc.ssl_target_name_override"].GetStringValue(); got != "wardend.warden-system.svc" {
		t.Errorf("server name %q, want wardend's", got)
	}
	if got := args["grpc.keepalive_time_ms"].GetIntValue(); got != 30000 {
		t.Errorf("keepalive %d", got)
	}
	if g.GetCredentialsFactoryName() != FileCredentials || len(g.GetCallCredentials()) != 1 {
		t.Fatalf("call credentials %v", g.GetCallCredentials())
	}
	plugin := g.GetCallCredentials()[0].GetFromPlugin()
	var cfg grpccred.FileBasedMetadataConfig
	if plugin.GetName() != FileCredentials || plugin.GetTypedConfig().UnmarshalTo(&cfg) != nil {
		t.Fatalf("plugin %v", plugin)
	}
	if cfg.GetSecretData().GetFilename() != "/run/token" || cfg.GetHeaderKey() != "authorization" || cfg.GetHeaderPrefix() != "Bearer " {
		t.Errorf("token credential %v", &cfg)
	}
}
