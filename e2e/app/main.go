// Command warden-e2e-app is the test application of Warden's end-to-end scenarios.
//
// Without a subcommand (or with `serve`) it serves HTTP and TCP on the given ports with
// the behaviour scenarios.md describes for `apps`: an echo of the request, fixed
// content, forwarding to an upstream, or an HTTP ext_authz server. The subcommands
// `request`, `tcp` and `tls-peer` are clients that the runner starts inside a pod's
// network namespace; each prints one JSON object describing what happened.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, rest := "serve", args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		log := slog.New(slog.NewTextHandler(stderr, nil))
		err = serveMain(ctx, log, rest)
	case "request":
		err = requestMain(ctx, rest, stdout)
	case "tcp":
		err = tcpMain(ctx, rest, stdout)
	case "tls-peer":
		err = tlsPeerMain(ctx, rest, stdout)
	default:
		err = fmt.Errorf("unknown subcommand %q (want serve, request, tcp or tls-peer)", cmd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "warden-e2e-app %s: %v\n", cmd, err)
		return 2
	}
	return 0
}
