package capture

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// inFreshNetns runs fn on an OS thread moved into a new, empty network namespace, so
// commands it starts see only that namespace. The thread is discarded afterwards.
func inFreshNetns(t *testing.T, fn func() error) error {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test installs iptables rules in a private network namespace: run as root")
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

func natRules(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", "nat").CombinedOutput()
	return string(out), err
}

func TestApplyAndRemove(t *testing.T) {
	ctx := context.Background()
	var afterApply, afterRemove string
	err := inFreshNetns(t, func() error {
		// A foreign rule that Apply and Remove must leave alone.
		if out, err := exec.Command("iptables", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", "RETURN").CombinedOutput(); err != nil {
			t.Errorf("add foreign rule: %v: %s", err, out)
		}
		for range 2 { // applying twice must not duplicate anything
			if err := Apply(ctx, DefaultConfig()); err != nil {
				return err
			}
		}
		var err error
		if afterApply, err = natRules(ctx); err != nil {
			return err
		}
		if err := Remove(ctx); err != nil {
			return err
		}
		afterRemove, err = natRules(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-A PREROUTING -p tcp -j WARDEN_INBOUND",
		"-A OUTPUT -p tcp -j WARDEN_OUTPUT",
		"-A WARDEN_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
		"-A WARDEN_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
		"-A WARDEN_OUTPUT -m owner --uid-owner 1337 -j RETURN",
		"-A WARDEN_INBOUND -p tcp -m tcp --dport 15021 -j RETURN",
	} {
		if n := strings.Count(afterApply, want+"\n"); n != 1 {
			t.Errorf("after apply: %q appears %d times, want once:\n%s", want, n, afterApply)
		}
	}
	if strings.Contains(afterRemove, "WARDEN") {
		t.Errorf("after remove, Warden rules are left:\n%s", afterRemove)
	}
	for name, rules := range map[string]string{"apply": afterApply, "remove": afterRemove} {
		if !strings.Contains(rules, "-A OUTPUT -p udp -j RETURN") {
			t.Errorf("after %s the foreign rule is gone:\n%s", name, rules)
		}
	}
}

// TestRemoveFailsWhenTheTableCannotBeRead: an iptables that cannot read the nat table (no
// lock file, no /dev/null in a bare image) must fail Remove and so Apply, rather than
// look like "nothing installed" and make Apply add its jumps a second time.
func TestRemoveFailsWhenTheTableCannotBeRead(t *testing.T) {
	dir := t.TempDir()
	broken := "#!/bin/sh\necho 'Another app is currently holding the xtables lock' >&2\nexit 4\n"
	for _, name := range []string{"iptables-save", "iptables", "iptables-restore"} {
		if err := os.WriteFile(dir+"/"+name, []byte(broken), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	err := Apply(context.Background(), DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "read the nat table") || !strings.Contains(err.Error(), "xtables lock") {
		t.Fatalf("Apply with a broken iptables = %v, want the nat table read error with iptables' message", err)
	}
}

func TestInstalledFindsEveryCopyOfAJump(t *testing.T) {
	save := `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:WARDEN_INBOUND - [0:0]
:WARDEN_OUTPUT - [0:0]
-A PREROUTING -p tcp -j WARDEN_INBOUND
-A PREROUTING -p tcp -j WARDEN_INBOUND
-A OUTPUT -p udp -j RETURN
-A OUTPUT -p tcp -j WARDEN_OUTPUT
-A WARDEN_OUTPUT -j WARDEN_REDIRECT
COMMIT
`
	jumps, chains := installed(save)
	if len(jumps) != 3 || strings.Join(jumps[0], " ") != "PREROUTING -p tcp -j WARDEN_INBOUND" || strings.Join(jumps[2], " ") != "OUTPUT -p tcp -j WARDEN_OUTPUT" {
		t.Errorf("jumps = %q, want both PREROUTING copies and the OUTPUT one (not the jump between Warden's own chains)", jumps)
	}
	if strings.Join(chains, ",") != "WARDEN_INBOUND,WARDEN_OUTPUT" {
		t.Errorf("chains = %q", chains)
	}
}
