package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serveMain parses the serve flags and serves until ctx ends.
func serveMain(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	httpPorts := fs.String("http-ports", "80", "comma-separated HTTP ports")
	tcpPorts := fs.String("tcp-ports", "", "comma-separated TCP line-echo ports")
	configPath := fs.String("config", "", "JSON file with forward, static and extAuthz")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS on the HTTP ports with this certificate chain (PEM); needs -tls-key")
	tlsKey := fs.String("tls-key", "", "private key (PEM) of -tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hp, err := parsePorts(*httpPorts)
	if err != nil {
		return fmt.Errorf("-http-ports: %w", err)
	}
	tp, err := parsePorts(*tcpPorts)
	if err != nil {
		return fmt.Errorf("-tcp-ports: %w", err)
	}
	if len(hp)+len(tp) == 0 {
		return errors.New("no ports to serve")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var httpLns, tcpLns []net.Listener
	closeAll := func() {
		for _, ln := range append(httpLns, tcpLns...) {
			_ = ln.Close()
		}
	}
	for _, p := range hp {
		ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p)))
		if err != nil {
			closeAll()
			return fmt.Errorf("listen http: %w", err)
		}
		httpLns = append(httpLns, ln)
	}
	if *tlsCert != "" || *tlsKey != "" {
		wrapped, err := tlsListeners(httpLns, *tlsCert, *tlsKey)
		if err != nil {
			closeAll()
			return err
		}
		httpLns = wrapped
	}
	for _, p := range tp {
		ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p)))
		if err != nil {
			closeAll()
			return fmt.Errorf("listen tcp: %w", err)
		}
		tcpLns = append(tcpLns, ln)
	}
	return serve(ctx, log, cfg, httpLns, tcpLns)
}

// serve runs the HTTP and TCP servers on the given listeners until ctx ends.
func serve(ctx context.Context, log *slog.Logger, cfg appConfig, httpLns, tcpLns []net.Listener) error {
	srv := &http.Server{
		Handler:           withServerName(newHandler(cfg, newForwardClient())),
		ReadHeaderTimeout: 10 * time.Second,
	}
	// HTTP/1.1 and HTTP/2 without TLS (prior knowledge): gRPC clients (Envoy's
	// ext_authz) and a sidecar's HTTP/2 upstream (http2, grpc, grpc-web ports) speak h2c.
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	var wg sync.WaitGroup
	errs := make(chan error, len(httpLns)+len(tcpLns))
	for _, ln := range httpLns {
		log.Info("serving http", "addr", ln.Addr().String())
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http %s: %w", ln.Addr(), err)
			}
		})
	}
	for _, ln := range tcpLns {
		banner := cfg.banner(ln.Addr())
		log.Info("serving tcp echo", "addr", ln.Addr().String(), "serverFirst", banner != "")
		wg.Go(func() {
			if err := serveEcho(ln, banner); err != nil && !errors.Is(err, net.ErrClosed) {
				errs <- fmt.Errorf("tcp %s: %w", ln.Addr(), err)
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	for _, ln := range tcpLns {
		_ = ln.Close()
	}
	wg.Wait()
	return err
}

// banner is the greeting of a server-first port (cfg.ServerFirst), else "".
func (c appConfig) banner(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if ok && slices.Contains(c.ServerFirst, ta.Port) {
		return fmt.Sprintf("warden-banner %d\n", ta.Port)
	}
	return ""
}

// serveEcho accepts connections and echoes every line back until the peer closes; with
// a banner it sends that first, before reading anything.
func serveEcho(ln net.Listener, banner string) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go echoLines(conn, banner)
	}
}

func echoLines(conn net.Conn, banner string) {
	defer conn.Close()
	if banner != "" {
		if _, err := io.WriteString(conn, banner); err != nil {
			return
		}
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if len(line) > 0 {
			if _, werr := io.WriteString(conn, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func parsePorts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.ParseUint(f, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("invalid port %q", f)
		}
		out = append(out, int(p))
	}
	return out, nil
}
