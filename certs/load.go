package certs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Names of the files in the state directory.
const (
	PluggedCADir = "cacerts" // Istio-style plug-in certificates
	SelfCADir    = "ca"      // the self-signed root wardend made

	PluggedCertFile  = "ca-cert.pem"
	PluggedKeyFile   = "ca-key.pem"
	PluggedRootFile  = "root-cert.pem"
	PluggedChainFile = "cert-chain.pem"

	RootCertFile = "root-cert.pem"
	RootKeyFile  = "root-key.pem"
)

// LoadOrCreateCA returns the mesh CA kept in stateDir (created with mode
// 0700 if missing). Plug-in files in stateDir/cacerts win; otherwise the
// root in stateDir/ca is used, and created on first start: a self-signed
// ECDSA P-256 root valid for ten years, kept across restarts. A nil now means
// time.Now.
//
// An existing state directory (or its ca/ and cacerts/ folders) open to other users is
// made 0700, a private key file open to them 0600, each logged with its old mode; one
// owned by another non-root user, or a symlink (for a key file: out of its folder), is
// refused with an error naming it.
func LoadOrCreateCA(stateDir string, trustDomain string, now func() time.Time, opts ...LoadOption) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	cfg := newLoadConfig(opts)
	if err := ensureDir(stateDir, cfg.log); err != nil {
		return nil, err
	}
	plugged, err := hasPluggedCA(filepath.Join(stateDir, PluggedCADir))
	if err != nil {
		return nil, err
	}
	if plugged {
		return LoadPluggedCA(filepath.Join(stateDir, PluggedCADir), trustDomain, now, opts...)
	}
	return loadOrCreateSelfSigned(filepath.Join(stateDir, SelfCADir), trustDomain, now, cfg.log)
}

// hasPluggedCA reports whether dir holds any plug-in file. A directory with
// some but not all of them is reported as plugged so that loading names the
// missing file instead of silently minting a different root.
func hasPluggedCA(dir string) (bool, error) {
	for _, name := range []string{PluggedCertFile, PluggedKeyFile, PluggedRootFile, PluggedChainFile} {
		ok, err := fileExists(filepath.Join(dir, name))
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// LoadPluggedCA loads an Istio-style plug-in CA from dir: ca-cert.pem and
// ca-key.pem (the intermediate that signs), root-cert.pem (the trust bundle)
// and cert-chain.pem (the chain from ca-cert towards the root; optional when
// ca-cert is signed by the root directly). Errors name the offending file.
// dir and ca-key.pem are checked and tightened as LoadOrCreateCA describes.
func LoadPluggedCA(dir string, trustDomain string, now func() time.Time, opts ...LoadOption) (*CA, error) {
	cfg := newLoadConfig(opts)
	if err := secureDir(dir, cfg.log); err != nil {
		return nil, err
	}
	src := caSources{
		cert:  filepath.Join(dir, PluggedCertFile),
		key:   filepath.Join(dir, PluggedKeyFile),
		root:  filepath.Join(dir, PluggedRootFile),
		chain: filepath.Join(dir, PluggedChainFile),
	}
	certPEM, err := readRequired(src.cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readKeyFile(src.key, cfg.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing", src.key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.key, err)
	}
	rootPEM, err := readRequired(src.root)
	if err != nil {
		return nil, err
	}
	chainPEM, err := os.ReadFile(src.chain)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", src.chain, err)
	}
	ca, err := newCA(certPEM, keyPEM, rootPEM, chainPEM, trustDomain, now, src)
	if err != nil {
		return nil, fmt.Errorf("plugged ca: %w", err)
	}
	return ca, nil
}

func readRequired(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// loadOrCreateSelfSigned loads dir/root-cert.pem and dir/root-key.pem, or
// creates both at once if dir is missing or empty.
func loadOrCreateSelfSigned(dir string, trustDomain string, now func() time.Time, log *slog.Logger) (*CA, error) {
	if err := secureDir(dir, log); err != nil {
		return nil, err
	}
	if ca, err := loadSelfSigned(dir, trustDomain, now, log); err == nil || !errors.Is(err, errNoRoot) {
		return ca, err
	}
	certPEM, keyPEM, err := newRootPEM(now())
	if err != nil {
		return nil, err
	}
	created, err := createDirOnce(dir, []fileSpec{
		{name: RootKeyFile, data: keyPEM, perm: keyPerm},
		{name: RootCertFile, data: certPEM, perm: certPerm},
	})
	if err != nil {
		return nil, fmt.Errorf("store self-signed root: %w", err)
	}
	if !created { // another process won the race, or dir holds other files
		return loadSelfSigned(dir, trustDomain, now, log)
	}
	return newSelfSignedCA(dir, certPEM, keyPEM, trustDomain, now)
}

var errNoRoot = errors.New("no self-signed root")

func loadSelfSigned(dir string, trustDomain string, now func() time.Time, log *slog.Logger) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := readKeyFile(keyPath, log)
	certMissing, keyMissing := errors.Is(certErr, os.ErrNotExist), errors.Is(keyErr, os.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return nil, errNoRoot
	case certMissing:
		return nil, fmt.Errorf("%s is missing but %s exists; restore it or remove both", certPath, keyPath)
	case keyMissing:
		return nil, fmt.Errorf("%s is missing but %s exists; restore it or remove both", keyPath, certPath)
	case certErr != nil:
		return nil, fmt.Errorf("read %s: %w", certPath, certErr)
	case keyErr != nil:
		return nil, fmt.Errorf("read %s: %w", keyPath, keyErr)
	}
	return newSelfSignedCA(dir, certPEM, keyPEM, trustDomain, now)
}

func newSelfSignedCA(dir string, certPEM, keyPEM []byte, trustDomain string, now func() time.Time) (*CA, error) {
	certPath := filepath.Join(dir, RootCertFile)
	src := caSources{cert: certPath, key: filepath.Join(dir, RootKeyFile), root: certPath, chain: certPath}
	ca, err := newCA(certPEM, keyPEM, certPEM, nil, trustDomain, now, src)
	if err != nil {
		return nil, fmt.Errorf("self-signed ca: %w", err)
	}
	return ca, nil
}
