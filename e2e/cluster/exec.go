package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// requiredTools are the programs the package runs.
var requiredTools = []string{"ip", "iptables", "iptables-restore", "setpriv", "sysctl"}

// command runs name with args and returns its combined output; a failure's error carries
// the command line and the output.
func command(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return out.Bytes(), fmt.Errorf("%s not found: run `make deps`: %w", name, err)
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// ip runs the ip tool.
func ip(ctx context.Context, args ...string) error {
	_, err := command(ctx, nil, "ip", args...)
	return err
}

// iptables runs iptables.
func iptables(ctx context.Context, args ...string) error {
	_, err := command(ctx, nil, "iptables", args...)
	return err
}

// checkTools reports the first required program that is missing.
func checkTools() error {
	for _, t := range requiredTools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found: run `make deps`", t)
		}
	}
	return nil
}
