package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

const (
	pemCertificate  = "CERTIFICATE"
	pemPKCS8Key     = "PRIVATE KEY"
	pemECKey        = "EC PRIVATE KEY"
	pemRSAKey       = "RSA PRIVATE KEY"
	pemECParameters = "EC PARAMETERS"
)

// parseCertsPEM parses every CERTIFICATE block in data. Text around the
// blocks is ignored; any other block type is an error. An input without
// certificates is an error too.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	certs, err := parseCertsPEMAllowEmpty(data)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// parseCertsPEMAllowEmpty is parseCertsPEM for inputs that may be empty.
func parseCertsPEMAllowEmpty(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return certs, nil
		}
		if block.Type != pemCertificate {
			return nil, fmt.Errorf("unexpected PEM block %q, want %q", block.Type, pemCertificate)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
}

// parsePrivateKeyPEM parses the first private key in data, accepting PKCS#8,
// SEC 1 (EC) and PKCS#1 (RSA) encodings, as operators' CA files come in all
// three. An "EC PARAMETERS" block before the key (openssl ecparam) is skipped.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case pemECParameters:
			continue
		case pemPKCS8Key:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case pemECKey:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case pemRSAKey:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("unexpected PEM block %q, want a private key", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key of type %T cannot sign", key)
		}
		return signer, nil
	}
}

// encodeCertsPEM returns the certificates as concatenated PEM blocks.
func encodeCertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c.Raw})...)
	}
	return out
}

// encodeKeyPEM returns key as a PKCS#8 PEM block, the form go-spiffe and
// Envoy both read.
func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8Key, Bytes: der}), nil
}
