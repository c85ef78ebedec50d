package cluster

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenmesh/warden/cmd/wardenctl/capture"
)

func TestPodsTalkByName(t *testing.T) {
	c := newCluster(t)
	a := addPod(t, c, "default", "sleep")
	b := addPod(t, c, "istioinaction", "webapp")
	if a.IP() == b.IP() || !strings.HasPrefix(a.NetNS(), "w") || len(a.NetNS()) > 15 {
		t.Fatalf("pods a=%s/%s b=%s/%s", a.NetNS(), a.IP(), b.NetNS(), b.IP())
	}
	serveIn(t, c, b, 0, "0.0.0.0:8080", "webapp")
	if err := c.SetHosts(a, map[string]string{
		"webapp.istioinaction":                   b.IP(),
		"webapp.istioinaction.svc.cluster.local": b.IP(),
	}); err != nil {
		t.Fatal(err)
	}
	out, err := a.Exec(context.Background(), "getent", "hosts", "webapp.istioinaction.svc.cluster.local")
	if err != nil || !strings.HasPrefix(string(out), b.IP()+" ") {
		t.Fatalf("getent in pod: %q %v", out, err)
	}
	if out, err := a.Exec(context.Background(), "getent", "hosts", "localhost"); err != nil || !strings.Contains(string(out), "localhost") {
		t.Errorf("localhost: %q %v", out, err)
	}
	// The pod's own Go program resolves the name from the pod's hosts file.
	got, err := dialFrom(t, c, a, 0, "webapp.istioinaction:8080")
	if err != nil || got != "webapp hello" {
		t.Fatalf("a -> b by name: %q %v", got, err)
	}
	// The host reaches pods too (wardend listens there).
	if got, err := helperDial(b.IP()+":8080", "hello", 5*time.Second); err != nil || got != "webapp hello\n" {
		t.Errorf("host -> b: %q %v", got, err)
	}
}

func TestServiceDNATWithoutSidecar(t *testing.T) {
	c := newCluster(t)
	client := addPod(t, c, "default", "sleep")
	b := addPod(t, c, "default", "httpbin-v1")
	d := addPod(t, c, "default", "httpbin-v2")
	serveIn(t, c, b, 0, "0.0.0.0:8080", "v1")
	serveIn(t, c, d, 0, "0.0.0.0:9090", "v2")
	vip, err := c.AllocServiceIP()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(vip, strings.TrimSuffix(c.ServiceCIDR(), "0/24")) {
		t.Fatalf("vip %s outside %s", vip, c.ServiceCIDR())
	}
	if err := c.SetServiceDNAT(vip, 80, b.IP(), 8080); err != nil {
		t.Fatal(err)
	}
	if got, err := dialFrom(t, c, client, 0, vip+":80"); err != nil || got != "v1 hello" {
		t.Fatalf("client -> vip: %q %v", got, err)
	}
	// The endpoint reaching itself through its own Service (hairpin).
	if got, err := dialFrom(t, c, b, 0, vip+":80"); err != nil || got != "v1 hello" {
		t.Fatalf("endpoint -> own vip: %q %v", got, err)
	}
	// A new endpoint replaces the old one.
	if err := c.SetServiceDNAT(vip, 80, d.IP(), 9090); err != nil {
		t.Fatal(err)
	}
	if got, err := dialFrom(t, c, client, 0, vip+":80"); err != nil || got != "v2 hello" {
		t.Fatalf("client -> vip after change: %q %v", got, err)
	}
	if err := c.RemoveServiceDNAT(vip, 80); err != nil {
		t.Fatal(err)
	}
	if got, err := dialFrom(t, c, client, 0, vip+":80"); err == nil {
		t.Fatalf("client -> removed vip answered %q", got)
	}
}

func TestStartRunsAsUIDInPod(t *testing.T) {
	c := newCluster(t)
	p := addPod(t, c, "default", "proxy")
	// The program reports its own credentials, network namespace and environment.
	pr, err := p.Start("whoami", 1337, []string{"FOO=bar"}, "sh", "-c",
		`echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) foo=$FOO"; readlink /proc/self/ns/net`)
	if err != nil {
		t.Fatal(err)
	}
	<-pr.Exited()
	if err := pr.Err(); err != nil {
		t.Fatalf("exit: %v: %s", err, pr.LogTail(10))
	}
	var podNS syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", p.NetNS()), &podNS); err != nil {
		t.Fatal(err)
	}
	want := "uid=1337 gid=1337 groups=1337 foo=bar\nnet:[" + strconv.FormatUint(podNS.Ino, 10) + "]"
	if got := pr.LogTail(2); got != want {
		t.Errorf("process reported %q, want %q", got, want)
	}
}

func TestStopEndsProcessGroup(t *testing.T) {
	c := newCluster(t)
	p := addPod(t, c, "default", "stopper")
	// A shell and its children that all ignore SIGTERM: Stop must kill them after the
	// grace period.
	pr, err := p.Start("stubborn", 1337, nil, "sh", "-c", `trap "" TERM; while :; do sleep 1; done`)
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pr.Exited():
	default:
		t.Fatal("Stop returned before the process ended")
	}
	if err := syscall.Kill(-pr.Pid(), 0); err == nil {
		t.Error("process group still has members after Stop")
	}
	if err := pr.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestProcessLogTail(t *testing.T) {
	c := newCluster(t)
	p := addPod(t, c, "default", "logger")
	pr, err := p.Start("lines", 0, nil, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2")
	if err != nil {
		t.Fatal(err)
	}
	<-pr.Exited()
	if err := pr.Err(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if got := pr.LogTail(3); got != "line4\nline5\noops" {
		t.Errorf("LogTail(3) = %q", got)
	}
}

func TestCaptureSendsAppTrafficToProxy(t *testing.T) {
	c := newCluster(t)
	app := addPod(t, c, "default", "webapp")
	upstream := addPod(t, c, "default", "catalog")
	serveIn(t, c, upstream, 0, "0.0.0.0:80", "catalog")
	// The "proxy" listens on the outbound and inbound capture ports as uid 1337.
	serveIn(t, c, app, 1337, "0.0.0.0:15001", "outbound")
	serveIn(t, c, app, 1337, "0.0.0.0:15006", "inbound")
	serveIn(t, c, app, 0, "0.0.0.0:15021", "health")
	if err := app.ApplyCapture(context.Background(), capture.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		from *Pod
		uid  int
		addr string
		want string
	}{
		{"app outbound is captured", app, 0, upstream.IP() + ":80", "outbound hello"},
		{"proxy outbound is not", app, 1337, upstream.IP() + ":80", "catalog hello"},
		{"inbound is captured", upstream, 0, app.IP() + ":8080", "inbound hello"},
		{"excluded inbound port is not", upstream, 0, app.IP() + ":15021", "health hello"},
		{"app to localhost is not", app, 0, "127.0.0.1:15021", "health hello"},
	}
	for _, tc := range cases {
		got, err := dialFrom(t, c, tc.from, tc.uid, tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	c, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.AddPod(context.Background(), PodSpec{Namespace: "default", Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := p.Start("sleeper", 1337, nil, "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	vip, _ := c.AllocServiceIP()
	if err := c.SetServiceDNAT(vip, 80, p.IP(), 8080); err != nil {
		t.Fatal(err)
	}
	n := c.n
	work := c.WorkDir()
	// Pods are fenced in while the run lives.
	fwd, err := exec.Command("iptables", "-S", chainFwd(n)).CombinedOutput()
	if err != nil || !strings.Contains(string(fwd), "-A "+chainFwd(n)+" -i "+bridgeName(n)+" -j DROP") {
		t.Errorf("forward fence missing: %s %v", fwd, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-pr.Exited():
	default:
		t.Error("process still running after Close")
	}
	for _, path := range []string{
		filepath.Join("/run/netns", p.NetNS()),
		filepath.Join("/etc/netns", p.NetNS()),
		filepath.Join("/sys/class/net", bridgeName(n)),
		filepath.Join("/sys/class/net", "w"+itoa(n)+"h"+strings.TrimPrefix(p.NetNS(), netnsPrefix(n))),
		stateDir(n),
		work,
	} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s still exists after Close", path)
		}
	}
	assertNoRules(t, n)
	if _, err := c.AddPod(context.Background(), PodSpec{Namespace: "default", Name: "late"}); err == nil {
		t.Error("AddPod after Close succeeded")
	}
}

// assertNoRules fails if slot n's chains or jumps are still in the host tables.
func assertNoRules(t *testing.T, n int) {
	t.Helper()
	for _, table := range []string{"nat", "filter"} {
		out, err := exec.Command("iptables-save", "-t", table).CombinedOutput()
		if err != nil {
			t.Fatalf("iptables-save: %v", err)
		}
		if prefix := "WE2E" + itoa(n) + "_"; strings.Contains(string(out), prefix) {
			t.Errorf("%s table still has %s rules:\n%s", table, prefix, out)
		}
	}
}

func TestConcurrentClustersGetDifferentSlots(t *testing.T) {
	a := newCluster(t)
	b := newCluster(t)
	if a.RunID() == b.RunID() || a.HostIP() == b.HostIP() || a.ServiceCIDR() == b.ServiceCIDR() {
		t.Fatalf("clusters share a slot: %s %s", a.RunID(), b.RunID())
	}
	pa := addPod(t, a, "default", "same")
	pb := addPod(t, b, "default", "same")
	if pa.NetNS() == pb.NetNS() || pa.IP() == pb.IP() {
		t.Fatalf("same pod name in two runs collides: %s/%s %s/%s", pa.NetNS(), pa.IP(), pb.NetNS(), pb.IP())
	}
	// Runs are isolated: a pod of one run cannot reach a pod of the other.
	serveIn(t, b, pb, 0, "0.0.0.0:8080", "b")
	if got, err := dialFrom(t, b, pb, 0, "127.0.0.1:8080"); err != nil || got != "b hello" {
		t.Fatalf("b's server: %q %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := pa.Exec(ctx, "env", helperEnv+"=dial", testBinary(t, a), pb.IP()+":8080", "hello", "2s")
	if err == nil {
		t.Errorf("a pod of run %s reached run %s: %q", a.RunID(), b.RunID(), out)
	}
}

// startOwner runs a helper process that owns a cluster with one pod and returns it with
// the run id and pod netns it printed.
func startOwner(t *testing.T, role string) (*exec.Cmd, string, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	owner := exec.Command(self, "-test.run=^$")
	owner.Env = append(os.Environ(), helperEnv+"="+role)
	stdout, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	owner.Stderr = os.Stderr
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 2 {
		_ = owner.Process.Kill()
		_ = owner.Wait()
		t.Fatalf("owner helper printed %q: %v", line, err)
	}
	return owner, fields[0], fields[1]
}

func TestSignalRemovesEverything(t *testing.T) {
	owner, run, netns := startOwner(t, "signal")
	if err := owner.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := owner.Wait()
	if status, ok := owner.ProcessState.Sys().(syscall.WaitStatus); !ok || !status.Signaled() || status.Signal() != syscall.SIGTERM {
		t.Errorf("owner should end by SIGTERM after cleaning up, got %v", err)
	}
	var n int
	if _, err := fmtSscan(run, &n); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join("/run/netns", netns),
		filepath.Join("/etc/netns", netns),
		filepath.Join("/sys/class/net", bridgeName(n)),
		stateDir(n),
	} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s still exists after SIGTERM", path)
		}
	}
	assertNoRules(t, n)
}

func TestNewCleansLeftoversOfDeadRun(t *testing.T) {
	crash, deadRun, deadNetns := startOwner(t, "crash")
	// The owner dies without cleaning up.
	if err := crash.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = crash.Wait()
	if _, err := os.Stat(filepath.Join("/run/netns", deadNetns)); err != nil {
		t.Fatalf("the dead run left no netns to clean: %v", err)
	}

	c := newCluster(t)
	if _, err := os.Stat(filepath.Join("/run/netns", deadNetns)); err == nil {
		t.Errorf("netns %s of dead run %s is still there", deadNetns, deadRun)
	}
	if _, err := os.Stat(filepath.Join("/etc/netns", deadNetns)); err == nil {
		t.Errorf("/etc/netns/%s of dead run %s is still there", deadNetns, deadRun)
	}
	st, ok := readState(c.n)
	if !ok || st.PID != os.Getpid() {
		t.Errorf("state of the new run: %+v %v", st, ok)
	}
	if c.RunID() != deadRun {
		// The dead run's slot was not reused by this run, so nothing of it may remain.
		// Tests of other packages run at the same time and may take the freed slot: hold
		// its lock while checking, and if a live run holds it, its rules are its own.
		var n int
		if _, err := fmtSscan(deadRun, &n); err == nil {
			s, free, err := tryLock(n)
			if err != nil {
				t.Fatal(err)
			}
			if free {
				defer s.release()
				assertNoRules(t, n)
				if _, err := os.Stat(filepath.Join("/sys/class/net", bridgeName(n))); err == nil {
					t.Errorf("bridge of dead run %s still exists", deadRun)
				}
			} else {
				t.Logf("slot %d was taken by a live run before the check; its rules belong to that run", n)
			}
		}
	}
}

func TestEnvoyPath(t *testing.T) {
	t.Setenv(EnvoyEnv, "/nonexistent/envoy")
	if _, err := EnvoyPath(); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("missing $%s: %v", EnvoyEnv, err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, ".venv", "bin", "envoy")
	t.Setenv(EnvoyEnv, "")
	got, err := EnvoyPath()
	if err != nil || got != want {
		t.Errorf("EnvoyPath() = %q, %v; want %q (run make deps)", got, err, want)
	}
}
