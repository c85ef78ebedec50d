package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/wardenmesh/warden/certs"
	"github.com/wardenmesh/warden/e2e/xdsload"
	"github.com/wardenmesh/warden/xds"
)

// fleet is an xdsload fleet whose proxies carry wardend-signed tokens (directory mode).
type fleet struct {
	*xdsload.Fleet
	signer *certs.TokenSigner
}

func newFleet(stateDir, xdsAddr string) (*fleet, error) {
	ca, err := certs.LoadOrCreateCA(stateDir, "cluster.local", time.Now)
	if err != nil {
		return nil, err
	}
	signer, err := certs.LoadOrCreateTokenKey(stateDir)
	if err != nil {
		return nil, err
	}
	f := xdsload.New(xdsload.Config{Addr: xdsAddr, TLS: &tls.Config{RootCAs: ca.Roots(), ServerName: "wardend"}})
	return &fleet{Fleet: f, signer: signer}, nil
}

// connect opens proxy i's stream and keeps ACKing in the background.
func (f *fleet) connect(ctx context.Context, i, namespaces int) error {
	p := &xdsload.Proxy{NS: nsName(i % namespaces), App: fmt.Sprintf("app-%04d", i)}
	id := xds.Identity{Namespace: p.NS, ServiceAccount: p.App, Pod: p.App}
	tok, err := f.signer.Sign(certs.TokenClaims{Namespace: id.Namespace, ServiceAccount: id.ServiceAccount, Pod: id.Pod}, time.Hour, time.Now())
	if err != nil {
		return err
	}
	md, err := xds.NodeMetadata(id, map[string]string{"app": p.App}, nil, false)
	if err != nil {
		return err
	}
	p.Token, p.Node = tok, &core.Node{Id: id.NodeID(), Metadata: md}
	return f.Add(ctx, p)
}
