package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvoyEnv names the environment variable that points at the Envoy binary.
const EnvoyEnv = "WARDEN_ENVOY"

const modulePath = "github.com/wardenmesh/warden"

// EnvoyPath returns the stock Envoy binary to run: $WARDEN_ENVOY when set, otherwise the
// one `make deps` installs in the repository's .venv.
func EnvoyPath() (string, error) {
	notFound := errors.New("stock Envoy 1.40 not found: run `make deps`")
	if p := os.Getenv(EnvoyEnv); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w (%w)", EnvoyEnv, p, notFound, err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w: %w", notFound, err)
	}
	p := filepath.Join(root, ".venv", "bin", "envoy")
	if err := executable(p); err != nil {
		return "", fmt.Errorf("%w (%w)", notFound, err)
	}
	return p, nil
}

// RepoRoot finds the Warden repository by walking up from the working directory to the
// go.mod that declares the module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(data)), "module "+modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found above the working directory")
		}
		dir = parent
	}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
