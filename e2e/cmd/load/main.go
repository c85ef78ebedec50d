// Command load measures wardend at scale with simulated sidecars: real ADS streams over
// TLS with signed tokens, each subscribing to CDS and LDS (and what they refer to) and
// ACKing every response, as the figures in shared/docs/xds-notes.md were measured.
//
// It prints: cold sync of all proxies with streams opened at -rate per second; the time
// until the one proxy a namespace-scoped policy change affects has the new listener, and
// how many other proxies were pushed; p50/p99 over all proxies for a mesh-wide change;
// and wardend's resident memory at steady state.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardenmesh/warden/e2e/xdsload"
)

func main() {
	proxies := flag.Int("proxies", 1000, "simulated sidecars")
	namespaces := flag.Int("namespaces", 100, "namespaces (workloads are spread over them)")
	policies := flag.Int("policies", 5000, "AuthorizationPolicies besides the per-namespace ones")
	rate := flag.Int("rate", 100, "streams opened per second")
	wardend := flag.String("wardend", "bin/wardend", "wardend binary")
	profile := flag.String("profile", "", "write wardend's CPU profile (over the two changes) and heap profile into this folder")
	flag.Parse()

	work, err := os.MkdirTemp("", "warden-load-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	cfg := filepath.Join(work, "config")
	state := filepath.Join(work, "state")
	if err := writeMesh(cfg, *proxies, *namespaces, *policies); err != nil {
		log.Fatal(err)
	}
	xdsAddr, debugAddr := "127.0.0.1:"+freePort(), "127.0.0.1:"+freePort()
	cmd := exec.Command(*wardend, "--config-dir", cfg, "--state-dir", state, "--xds-addr", xdsAddr,
		"--debug-addr", debugAddr, "--metrics-addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := waitReady(ctx, debugAddr); err != nil {
		log.Fatal(err)
	}
	fleet, err := newFleet(state, xdsAddr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("mesh: %d sidecars in %d namespaces, %d AuthorizationPolicies, mesh-wide STRICT; streams opened at %d/s\n",
		*proxies, *namespaces, *policies+*namespaces, *rate)

	// Cold sync.
	start := time.Now()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	for i := 0; i < *proxies; i++ {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := fleet.connect(ctx, i, *namespaces); err != nil {
				log.Printf("proxy %d: %v", i, err)
			}
		}(i)
	}
	tick.Stop()
	wg.Wait()
	if err := fleet.WaitAll(ctx, func(p *xdsload.Proxy) bool { return p.Has("LDS") && p.Has("CDS") }); err != nil {
		log.Fatal(err)
	}
	cold := time.Since(start)
	// The EDS, RDS and SDS answers the proxies asked for after CDS and LDS arrive now:
	// they are not pushes of the changes below.
	fleet.Settle(ctx, 0, 500*time.Millisecond)
	floor := time.Duration(*proxies) * time.Second / time.Duration(*rate)
	rss := rssMB(cmd.Process.Pid)

	var profDone chan error
	if *profile != "" {
		profDone = make(chan error, 1)
		go func() {
			profDone <- fetchTo(debugAddr, "/debug/pprof/profile?seconds=8", filepath.Join(*profile, "cpu.prof"))
		}()
	}
	// One namespace-scoped change: a selector policy for one workload.
	target := fleet.Proxies()[0]
	mark := fleet.Mark()
	t0 := time.Now()
	if err := writeFile(filepath.Join(cfg, "one.yaml"), onePolicy(target)); err != nil {
		log.Fatal(err)
	}
	if err := fleet.WaitOne(ctx, target, "LDS", mark); err != nil {
		log.Fatal(err)
	}
	one := time.Since(t0)
	// Let any stray pushes arrive before counting who was pushed.
	fleet.Settle(ctx, mark, 500*time.Millisecond)
	others := fleet.PushedSince(mark) - 1

	// Mesh-wide change: mesh STRICT -> PERMISSIVE changes every inbound listener, except
	// the target's, whose own workload policy already made it PERMISSIVE.
	mark = fleet.Mark()
	t0 = time.Now()
	if err := writeFile(filepath.Join(cfg, "00-mesh.yaml"), meshPolicy("PERMISSIVE")); err != nil {
		log.Fatal(err)
	}
	if err := fleet.WaitAll(ctx, func(p *xdsload.Proxy) bool { return p == target || p.GotSince("LDS", mark) }); err != nil {
		log.Fatal(err)
	}
	fleet.Settle(ctx, mark, 500*time.Millisecond)
	lat := fleet.Latencies("LDS", mark, t0)
	if target.GotSince("LDS", mark) {
		log.Fatal("the proxy whose own policy already said PERMISSIVE was pushed a new listener")
	}
	steady := rssMB(cmd.Process.Pid)
	if *profile != "" {
		if err := <-profDone; err != nil {
			log.Print(err)
		}
		if err := fetchTo(debugAddr, "/debug/pprof/heap", filepath.Join(*profile, "heap.prof")); err != nil {
			log.Print(err)
		}
		fmt.Printf("profiles in %s (go tool pprof %s cpu.prof)\n", *profile, *wardend)
	}

	fmt.Println()
	fmt.Printf("%-62s %-16s %s\n", "figure", "warden", "istiod (xds-notes)")
	fmt.Printf("%-62s %-16s %s\n", "cold sync, all proxies have CDS+LDS (pacing floor "+floor.String()+")", cold.Round(10*time.Millisecond).String(), "17.2 s")
	fmt.Printf("%-62s %-16s %s\n", "one namespace policy changed: affected proxy has new LDS", one.Round(time.Millisecond).String(), "134-145 ms")
	fmt.Printf("%-62s %-16s %s\n", "  proxies pushed that the change does not affect", strconv.Itoa(others), "9")
	fmt.Printf("%-62s %-16s %s\n", "mesh-wide policy changed: p50 over all proxies", xdsload.Pct(lat, 50).Round(time.Millisecond).String(), "-")
	fmt.Printf("%-62s %-16s %s\n", "mesh-wide policy changed: p99 over all proxies", xdsload.Pct(lat, 99).Round(time.Millisecond).String(), "465-718 ms")
	fmt.Printf("%-62s %-16s %s\n", "wardend resident memory after cold sync", fmt.Sprintf("%.0f MB", rss), "2.40 GB")
	fmt.Printf("%-62s %-16s %s\n", "wardend resident memory after the changes", fmt.Sprintf("%.0f MB", steady), "2.40 GB")
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
