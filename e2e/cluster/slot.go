package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// StateRoot holds the slot locks and the per-run state directories.
const StateRoot = "/run/warden-e2e"

// Slots is the number of runs that can share one machine.
const Slots = 64

// state is what a run records about itself in StateRoot/w<n>/state.json.
type state struct {
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	WorkDir    string    `json:"workDir"`
	OwnWorkDir bool      `json:"ownWorkDir"`
}

// slot is a held run slot.
type slot struct {
	n    int
	lock *os.File
}

// names derived from a slot number.
func runID(n int) string         { return fmt.Sprintf("w%d", n) }
func bridgeName(n int) string    { return fmt.Sprintf("wbr%d", n) }
func netnsPrefix(n int) string   { return fmt.Sprintf("w%d-", n) }
func chainSvc(n int) string      { return fmt.Sprintf("WE2E%d_SVC", n) }
func chainPost(n int) string     { return fmt.Sprintf("WE2E%d_POST", n) }
func chainFwd(n int) string      { return fmt.Sprintf("WE2E%d_FWD", n) }
func stateDir(n int) string      { return filepath.Join(StateRoot, runID(n)) }
func lockPath(n int) string      { return filepath.Join(StateRoot, fmt.Sprintf("slot-%d.lock", n)) }
func podSubnet(n int) string     { return fmt.Sprintf("10.248.%d.0/24", n) }
func hostIP(n int) string        { return fmt.Sprintf("10.248.%d.1", n) }
func serviceSubnet(n int) string { return fmt.Sprintf("10.249.%d.0/24", n) }

// tryLock takes slot n's lock without waiting; ok is false when another process holds it.
func tryLock(n int) (*slot, bool, error) {
	if err := os.MkdirAll(StateRoot, 0o755); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", StateRoot, err)
	}
	f, err := os.OpenFile(lockPath(n), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("open slot lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock slot %d: %w", n, err)
	}
	return &slot{n: n, lock: f}, true, nil
}

// acquireSlot takes the lowest free slot.
func acquireSlot() (*slot, error) {
	for n := range Slots {
		s, ok, err := tryLock(n)
		if err != nil {
			return nil, err
		}
		if ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("all %d e2e run slots are in use", Slots)
}

// release drops the slot's lock.
func (s *slot) release() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

func writeState(n int, st state) error {
	if err := os.MkdirAll(stateDir(n), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stateDir(n), "state.json"), data, 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func readState(n int) (state, bool) {
	var st state
	data, err := os.ReadFile(filepath.Join(stateDir(n), "state.json"))
	if err != nil || json.Unmarshal(data, &st) != nil {
		return st, false
	}
	return st, true
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Cleanup removes the leftovers of earlier runs. With stale set it touches only runs
// whose owner is gone: the slot lock is free (the kernel drops it when a process dies)
// and the recorded owner PID is not alive. Without it, it removes every run's resources,
// live or not, which is for an operator resetting a machine, not for tests.
func Cleanup(stale bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for n := range Slots {
		if !stale {
			errs = append(errs, cleanSlot(ctx, n))
			continue
		}
		s, ok, err := tryLock(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		if st, found := readState(n); !found || !alive(st.PID) || st.PID == os.Getpid() {
			errs = append(errs, cleanSlot(ctx, n))
		}
		s.release()
	}
	return errors.Join(errs...)
}

// cleanSlot removes everything named after slot n. Absent things are not an error.
func cleanSlot(ctx context.Context, n int) error {
	var errs []error
	names, err := listNetns(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range names {
		if strings.HasPrefix(ns, netnsPrefix(n)) {
			errs = append(errs, deleteNetns(ctx, ns))
		}
	}
	// /etc/netns dirs whose namespace is already gone.
	if entries, err := os.ReadDir("/etc/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), netnsPrefix(n)) {
				errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", e.Name())))
			}
		}
	}
	if linkExists(bridgeName(n)) {
		if err := ip(ctx, "link", "del", bridgeName(n)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, removeHostRules(ctx, n))
	if st, ok := readState(n); ok && st.OwnWorkDir && strings.Contains(st.WorkDir, "warden-e2e-") {
		errs = append(errs, os.RemoveAll(st.WorkDir))
	}
	errs = append(errs, os.RemoveAll(stateDir(n)))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean run slot %d: %w", n, err)
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// listNetns returns the names of the named network namespaces.
func listNetns(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, ctx.Err()
}

// deleteNetns kills what still runs inside a namespace, then removes it and its /etc
// files.
func deleteNetns(ctx context.Context, name string) error {
	if out, err := command(ctx, nil, "ip", "netns", "pids", name); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	var errs []error
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
		if err := ip(ctx, "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", name)))
	return errors.Join(errs...)
}
