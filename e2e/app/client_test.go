package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRequestCommand(t *testing.T) {
	srv := httptest.NewServer(newHandler(appConfig{}, newForwardClient()))
	defer srv.Close()
	var out, errOut bytes.Buffer
	// The URL names a host that does not resolve; -connect dials the server instead, and
	// the Host header keeps the URL's host and port.
	code := run(context.Background(), []string{"request", "-url", "http://webapp.istioinaction:8000/p?q=1",
		"-method", "PUT", "-header", "X-Token=a=b", "-header", "x-ext-authz=allow", "-body", "hi",
		"-connect", srv.Listener.Addr().String()}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res requestResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Status != 200 || res.ConnectionError {
		t.Fatalf("result %+v", res)
	}
	var echoed echoResponse
	if err := json.Unmarshal([]byte(res.Body), &echoed); err != nil {
		t.Fatal(err)
	}
	if echoed.Host != "webapp.istioinaction:8000" || echoed.Method != "PUT" || echoed.Query != "q=1" ||
		echoed.Headers["x-token"] != "a=b" || echoed.Headers["x-ext-authz"] != "allow" {
		t.Errorf("echoed %+v", echoed)
	}
}

func TestRequestConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := doRequest(context.Background(), "http://"+addr+"/", "GET", "", "", nil, 2*time.Second)
	if !res.ConnectionError || res.Error == "" || res.Status != 0 {
		t.Errorf("want a connection error, got %+v", res)
	}
	// A server that accepts and closes without answering is a connection error too.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.ReadAtLeast(c, make([]byte, 1), 1)
			c.Close()
		}
	}()
	res = doRequest(context.Background(), "http://"+ln.Addr().String()+"/", "GET", "", "", nil, 2*time.Second)
	if !res.ConnectionError {
		t.Errorf("closed without answer: want a connection error, got %+v", res)
	}
}

func TestServeAndTCPCommand(t *testing.T) {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- serve(ctx, log, appConfig{}, []net.Listener{httpLn}, []net.Listener{tcpLn}) }()

	var out bytes.Buffer
	if code := run(ctx, []string{"tcp", "-addr", tcpLn.Addr().String(), "-line", "ping <&>"}, &out, io.Discard); code != 0 {
		t.Fatalf("tcp exit %d", code)
	}
	var res tcpResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Echo || res.Got != "ping <&>" {
		t.Errorf("tcp result %+v", res)
	}
	// The HTTP port on the same server answers too.
	r := doRequest(ctx, "http://"+httpLn.Addr().String()+"/x", "GET", "", "", nil, 2*time.Second)
	if r.Status != 200 {
		t.Errorf("http on served port: %+v", r)
	}
	// An HTTP port does not echo lines.
	if res := doTCP(ctx, httpLn.Addr().String(), "hello", 2*time.Second, false); res.Echo {
		t.Errorf("http port echoed a line: %+v", res)
	}
	// A client waiting for a greeting gets none from a client-first echo.
	if res := doTCP(ctx, tcpLn.Addr().String(), "hello", time.Second, true); res.Echo {
		t.Errorf("client-first echo sent a greeting: %+v", res)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// A serverFirst port greets before reading, and then echoes; a client that waits for
// the greeting gets it, and so does one that sends first.
func TestServeServerFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- serve(ctx, log, appConfig{ServerFirst: []int{port}}, nil, []net.Listener{ln}) }()
	if res := doTCP(ctx, ln.Addr().String(), "hi", 2*time.Second, true); !res.Echo || res.Got != "hi" {
		t.Errorf("server-first client: %+v", res)
	}
	// A client-first client reads the greeting where it expects its echo.
	if res := doTCP(ctx, ln.Addr().String(), "hi", 2*time.Second, false); res.Echo || res.Got != fmt.Sprintf("warden-banner %d", port) {
		t.Errorf("client-first client on a server-first port: %+v", res)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestServeMainRejectsBadFlags(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"forwards": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-http-ports", "http"},
		{"-http-ports", "", "-tcp-ports", ""},
		{"-http-ports", "0", "-config", bad},
		{"-config", bad},
	} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code == 0 {
			t.Errorf("%v: want a failure", args)
		}
	}
	if code := run(context.Background(), []string{"nonsense"}, io.Discard, io.Discard); code == 0 {
		t.Error("unknown subcommand: want a failure")
	}
}

func TestTLSPeerCommand(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/istioinaction/sa/catalog")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(24 * time.Hour),
		URIs:         []*url.URL{spiffe},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}

	gotSNI := make(chan string, 1)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{"istio-peer-exchange", "istio"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			gotSNI <- hello.ServerName
			return nil, nil
		},
	}
	srv.StartTLS()
	defer srv.Close()

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"tls-peer", "-addr", srv.Listener.Addr().String(),
		"-cert", certFile, "-key", keyFile, "-sni", "outbound_.80_._.catalog.istioinaction.svc.cluster.local",
		"-alpn", "istio-peer-exchange,istio"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res tlsPeerResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Error != "" || res.NegotiatedProtocol != "istio-peer-exchange" {
		t.Fatalf("result %+v", res)
	}
	if len(res.URISANs) != 1 || res.URISANs[0] != spiffe.String() {
		t.Errorf("uriSANs %v", res.URISANs)
	}
	if !res.NotBefore.Equal(notBefore) || res.NotAfter.Sub(res.NotBefore) != 24*time.Hour {
		t.Errorf("validity %v - %v", res.NotBefore, res.NotAfter)
	}
	if res.PEM != string(certPEM) || len(res.Chain) != 1 {
		t.Errorf("chain %d certs, pem match %v", len(res.Chain), res.PEM == string(certPEM))
	}
	if sni := <-gotSNI; sni != "outbound_.80_._.catalog.istioinaction.svc.cluster.local" {
		t.Errorf("server saw SNI %q", sni)
	}

	// A closed port is reported as an error, not a crash.
	out.Reset()
	srv.Close()
	if code := run(context.Background(), []string{"tls-peer", "-addr", srv.Listener.Addr().String()}, &out, io.Discard); code != 0 {
		t.Fatalf("closed port exit %d", code)
	}
	if !strings.Contains(out.String(), `"error":`) {
		t.Errorf("closed port: %s", out.String())
	}
}
