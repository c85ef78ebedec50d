// Package wardendgrpc builds the one Envoy gRPC service through which a proxy reaches
// wardend: the bootstrap's ADS and the access loggers use the same, so both trust only
// the mesh root, accept only wardend's name and send the token file's content.
package wardendgrpc

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	grpccred "github.com/envoyproxy/go-control-plane/envoy/config/grpc_credential/v3"

	"github.com/wardenmesh/warden/internal/protoany"
)

// FileCredentials is Envoy's gRPC call-credentials plugin that reads a header value
// from a file on every new stream (the kubelet may rewrite the file in between).
const FileCredentials = "envoy.grpc_credentials.file_based_metadata"

// Channel says how a proxy reaches wardend.
type Channel struct {
	Target     string // host:port
	StatPrefix string
	ServerName string // the name wardend's certificate must carry, whatever address reaches it
	RootPEM    []byte // the only roots trusted
	TokenFile  string // sent as "authorization: Bearer <content>"
	// IntArgs are more gRPC channel arguments (e.g. keepalive), by name.
	IntArgs map[string]int64
}

// Service is the Envoy GrpcService for c.
func Service(c Channel) (*core.GrpcService, error) {
	creds, err := protoany.Marshal(&grpccred.FileBasedMetadataConfig{
		SecretData:   &core.DataSource{Specifier: &core.DataSource_Filename{Filename: c.TokenFile}},
		HeaderKey:    "authorization",
		HeaderPrefix: "Bearer ",
	})
	if err != nil {
		return nil, err
	}
	args := map[string]*core.GrpcService_GoogleGrpc_ChannelArgs_Value{
		"grpc.ssl_target_name_override": {ValueSpecifier: &core.GrpcService_GoogleGrpc_ChannelArgs_Value_StringValue{StringValue: c.ServerName}},
	}
	for k, v := range c.IntArgs {
		args[k] = &core.GrpcService_GoogleGrpc_ChannelArgs_Value{ValueSpecifier: &core.GrpcService_GoogleGrpc_ChannelArgs_Value_IntValue{IntValue: v}}
	}
	return &core.GrpcService{TargetSpecifier: &core.GrpcService_GoogleGrpc_{GoogleGrpc: &core.GrpcService_GoogleGrpc{
		TargetUri:  c.Target,
		StatPrefix: c.StatPrefix,
		ChannelCredentials: &core.GrpcService_GoogleGrpc_ChannelCredentials{
			CredentialSpecifier: &core.GrpcService_GoogleGrpc_ChannelCredentials_SslCredentials{
				SslCredentials: &core.GrpcService_GoogleGrpc_SslCredentials{
					RootCerts: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.RootPEM}},
				}}},
		CredentialsFactoryName: FileCredentials,
		CallCredentials: []*core.GrpcService_GoogleGrpc_CallCredentials{{
			CredentialSpecifier: &core.GrpcService_GoogleGrpc_CallCredentials_FromPlugin{
				FromPlugin: &core.GrpcService_GoogleGrpc_CallCredentials_MetadataCredentialsFromPlugin{
					Name:       FileCredentials,
					ConfigType: &core.GrpcService_GoogleGrpc_CallCredentials_MetadataCredentialsFromPlugin_TypedConfig{TypedConfig: creds},
				}}}},
		ChannelArgs: &core.GrpcService_GoogleGrpc_ChannelArgs{Args: args},
	}}}, nil
}
