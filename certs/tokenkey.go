package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// TokenKeyFile is the bootstrap token signing key in the state directory,
// separate from the CA key.
const TokenKeyFile = "token-key.pem"

// LoadOrCreateTokenKey returns the token signer whose key is kept in
// stateDir/token-key.pem, creating the key (mode 0600) on first use. wardend
// and wardenctl may call it concurrently on the same directory. An existing
// directory or key open to other users is made owner-only (and logged); one owned
// by another user, or a symlink out of the directory, is refused.
func LoadOrCreateTokenKey(stateDir string, opts ...LoadOption) (*TokenSigner, error) {
	cfg := newLoadConfig(opts)
	if err := ensureDir(stateDir, cfg.log); err != nil {
		return nil, err
	}
	path := filepath.Join(stateDir, TokenKeyFile)
	data, err := readKeyFile(path, cfg.log)
	if errors.Is(err, os.ErrNotExist) {
		if err := createTokenKey(path); err != nil {
			return nil, err
		}
		data, err = readKeyFile(path, cfg.log)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	signer, err := tokenSignerFromPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}

// createTokenKey writes a new key to path unless one appeared meanwhile.
func createTokenKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate token key: %w", err)
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	if _, err := createFileOnce(path, keyPEM, keyPerm); err != nil {
		return fmt.Errorf("store token key: %w", err)
	}
	return nil
}

func tokenSignerFromPEM(data []byte) (*TokenSigner, error) {
	signer, err := parsePrivateKeyPEM(data)
	if err != nil {
		return nil, err
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("token key must be an ECDSA P-256 key")
	}
	return newTokenSigner(key)
}

func newTokenSigner(key *ecdsa.PrivateKey) (*TokenSigner, error) {
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal token public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	return &TokenSigner{key: key, kid: hex.EncodeToString(sum[:8])}, nil
}
