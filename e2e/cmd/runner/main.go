// Command runner runs Warden's end-to-end scenarios: every *.yaml directly in the given
// folder (format: shared/docs/scenarios.md), against real wardend, stock Envoy and
// network-namespace pods. It prints PASS/FAIL per step and `N passed, N failed`, and
// exits non-zero if anything failed or could not run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/wardenmesh/warden/e2e/runner"
	"github.com/wardenmesh/warden/e2e/scenario"
)

func main() {
	dir := flag.String("scenarios", "e2e/scenarios", "folder of scenario files (*.yaml directly in it)")
	table := flag.Bool("table", false, "print a table per scenario (make demo)")
	run := flag.String("run", "", "only scenarios whose name contains this")
	verbose := flag.Bool("v", false, "log progress")
	keep := flag.Bool("keep", false, "leave the mesh of the one selected scenario up after its steps (dir mode), print commands to try, and wait for SIGINT/SIGTERM (make up)")
	pidFile := flag.String("pidfile", "", "write this process's pid here (make down signals it), removed on exit")
	mode := flag.String("mode", runner.ModeDir, "how manifests reach wardend: dir (files in its --config-dir) or kube (a real kube-apiserver per scenario; wardend runs with --kubeconfig)")
	injectPods := flag.Bool("inject", false, "run every sidecar pod from its injected Pod spec (inject.Pod), as a kubelet would: warden-init's capture, warden-bootstrap, Envoy as a native sidecar gated by its startupProbe, then the app; in kube mode the Pod object is the injected one")
	flag.Parse()
	if *mode != runner.ModeDir && *mode != runner.ModeKube {
		fmt.Fprintf(os.Stdout, "FAIL -mode %q: want %s or %s\n0 passed, 1 failed\n", *mode, runner.ModeDir, runner.ModeKube)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	scs, loadErr := scenario.LoadDir(*dir)
	if loadErr != nil && len(scs) == 0 {
		fmt.Fprintf(os.Stdout, "FAIL %s: %v\n0 passed, 1 failed\n", *dir, loadErr)
		os.Exit(1)
	}
	if loadErr != nil {
		// Files that do not load fail; the others still run.
		fmt.Fprintf(os.Stdout, "FAIL %s: %v\n", *dir, loadErr)
	}
	if *run != "" {
		var keep []*scenario.Scenario
		for _, sc := range scs {
			if contains(sc.Name, *run) {
				keep = append(keep, sc)
			}
		}
		scs = keep
	}
	if len(scs) == 0 {
		fmt.Fprintf(os.Stdout, "FAIL %s: no scenarios found\n0 passed, 1 failed\n", *dir)
		os.Exit(1)
	}
	if *keep && (len(scs) != 1 || *mode != runner.ModeDir) {
		fmt.Fprintf(os.Stdout, "FAIL -keep: needs exactly one scenario (-run) in -mode dir, got %d in mode %s\n0 passed, 1 failed\n", len(scs), *mode)
		os.Exit(1)
	}
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stdout, "FAIL -pidfile: %v\n0 passed, 1 failed\n", err)
			os.Exit(1)
		}
		defer os.Remove(*pidFile)
	}
	lvl := slog.LevelWarn
	if *verbose {
		lvl = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	sum := runner.Run(ctx, scs, runner.Options{Out: os.Stdout, Log: log, Table: *table, ExtraFailed: boolInt(loadErr != nil), Mode: *mode, Keep: *keep, Inject: *injectPods})
	injected := ""
	if *injectPods {
		injected = ", injected pods"
	}
	fmt.Fprintf(os.Stdout, "== %d scenario(s) in %s (mode %s%s)\n", len(scs), time.Since(start).Round(time.Second), *mode, injected)
	if sum.Failed > 0 || (ctx.Err() != nil && !*keep) {
		os.Remove(*pidFile)
		os.Exit(1)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
