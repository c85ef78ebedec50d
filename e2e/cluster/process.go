package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 5 * time.Second

// Process is a long-running program inside a pod.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// Start runs argv inside the pod as uid (and gid uid) in its own process group, with
// stdout and stderr appended to <pod dir>/<name>.log. The environment holds only PATH and
// env. The process is killed when Close runs or when this program dies.
func (p *Pod) Start(name string, uid int, env []string, argv ...string) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("start: empty command")
	}
	if name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("start: invalid process name %q", name)
	}
	p.cluster.mu.Lock()
	closed := p.cluster.closed
	p.cluster.mu.Unlock()
	if closed {
		return nil, errors.New("cluster is closed")
	}
	logPath := filepath.Join(p.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd := exec.Command("ip", append(p.wrap(uid, uid, true), argv...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Dir = p.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s in pod %s/%s: %w", name, p.namespace, p.name, err)
	}
	pr := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		logFile.Close()
		close(pr.done)
	}()
	p.mu.Lock()
	p.procs = append(p.procs, pr)
	p.mu.Unlock()
	return pr, nil
}

// Name is the name the process was started with.
func (pr *Process) Name() string { return pr.name }

// Pid is the process id. `ip netns exec` and setpriv replace themselves with the
// program, so this is the program's own pid.
func (pr *Process) Pid() int { return pr.cmd.Process.Pid }

// LogPath is the file that receives the process's output.
func (pr *Process) LogPath() string { return pr.logPath }

// Exited is closed when the process has ended.
func (pr *Process) Exited() <-chan struct{} { return pr.done }

// Err is the process's exit error once Exited is closed (nil for a clean exit).
func (pr *Process) Err() error {
	select {
	case <-pr.done:
		return pr.err
	default:
		return nil
	}
}

// Signal sends sig to the process.
func (pr *Process) Signal(sig os.Signal) error {
	if err := pr.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", pr.name, err)
	}
	return nil
}

// Stop ends the process group: SIGTERM, then SIGKILL after a grace period. It waits
// for the process and is safe to call more than once.
func (pr *Process) Stop() error {
	select {
	case <-pr.done:
		return nil
	default:
	}
	pgid := pr.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-pr.done:
	case <-timer.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-pr.done
	}
	// Anything the program left in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// LogTail returns the last n lines of the process's output.
func (pr *Process) LogTail(n int) string {
	const maxRead = 256 << 10
	f, err := os.Open(pr.logPath)
	if err != nil {
		return fmt.Sprintf("(log unavailable: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		_, _ = f.Seek(-maxRead, io.SeekEnd)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopAll stops every process of the pod.
func (p *Pod) stopAll() {
	p.mu.Lock()
	procs := append([]*Process(nil), p.procs...)
	p.mu.Unlock()
	for _, pr := range procs {
		_ = pr.Stop()
	}
}
