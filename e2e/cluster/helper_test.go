package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the programs the tests run inside pods; the environment
// variable helperEnv selects the role.
const helperEnv = "WARDEN_CLUSTER_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		if err := runHelper(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(role string, args []string) error {
	switch role {
	case "serve": // serve ADDR ID: answer each line with "ID LINE"
		return helperServe(args[0], args[1])
	case "dial": // dial ADDR LINE [WAIT]: print the answer
		wait := 10 * time.Second
		if len(args) > 2 {
			d, err := time.ParseDuration(args[2])
			if err != nil {
				return err
			}
			wait = d
		}
		got, err := helperDial(args[0], args[1], wait)
		if err != nil {
			return err
		}
		fmt.Print(got)
		return nil
	case "crash", "signal": // create a cluster with one pod, print its netns, wait for a signal
		c, err := New(context.Background(), Options{NoSignalHandler: role == "crash"})
		if err != nil {
			return err
		}
		p, err := c.AddPod(context.Background(), PodSpec{Namespace: "stale", Name: "pod"})
		if err != nil {
			return err
		}
		if _, err := p.Start("sleeper", 0, nil, "sleep", "600"); err != nil {
			return err
		}
		fmt.Printf("%s %s\n", c.RunID(), p.NetNS())
		select {}
	}
	return fmt.Errorf("unknown helper role %q", role)
}

func helperServe(addr, id string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprintf(conn, "%s %s", id, line)
		}()
	}
}

// helperDial sends one line and returns the answer. A refused connection is retried
// until the deadline: the server may still be starting.
func helperDial(addr, line string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Until(deadline))
		if err == nil {
			defer conn.Close()
			_ = conn.SetDeadline(deadline)
			if _, err := io.WriteString(conn, line+"\n"); err != nil {
				return "", err
			}
			return bufio.NewReader(conn).ReadString('\n')
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testBinary is this test executable, runnable by any user.
func testBinary(t *testing.T, c *Cluster) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := c.WorkDir() + "/helper"
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// newCluster creates a cluster that the test closes, failing (never skipping) when the
// machine cannot run it.
func newCluster(t *testing.T) *Cluster {
	t.Helper()
	c, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatalf("new cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func addPod(t *testing.T, c *Cluster, ns, name string) *Pod {
	t.Helper()
	p, err := c.AddPod(context.Background(), PodSpec{Namespace: ns, Name: name})
	if err != nil {
		t.Fatalf("add pod: %v", err)
	}
	return p
}

// serveIn starts a line server in the pod that answers with id.
func serveIn(t *testing.T, c *Cluster, p *Pod, uid int, addr, id string) *Process {
	t.Helper()
	pr, err := p.Start("serve-"+id, uid, []string{helperEnv + "=serve"}, testBinary(t, c), addr, id)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	return pr
}

// dialFrom sends "hello" from inside the pod as uid and returns the trimmed answer.
func dialFrom(t *testing.T, c *Cluster, p *Pod, uid int, addr string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := []string{"env", helperEnv + "=dial", testBinary(t, c), addr, "hello"}
	out, err := p.ExecAs(ctx, uid, uid, argv...)
	return strings.TrimSpace(string(out)), err
}
