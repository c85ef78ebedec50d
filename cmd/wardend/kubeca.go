package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/wardenmesh/warden/certs"
)

// The Secrets and Lease of Kubernetes mode, in wardend's namespace.
const (
	// PluggedCASecret is Istio's plug-in CA Secret (ca-cert.pem, ca-key.pem,
	// root-cert.pem, cert-chain.pem); when present it is the mesh CA.
	pluggedCASecret = "cacerts"
	// caSecret holds what wardend creates: the self-signed root (root-cert.pem,
	// root-key.pem) unless cacerts exists, and the bootstrap-token key (token-key.pem).
	caSecret = "warden-ca"
	// caLease elects the one replica that creates caSecret.
	caLease = "wardend-ca"

	rootCertKey = certs.RootCertFile
	rootKeyKey  = certs.RootKeyFile
	tokenKeyKey = certs.TokenKeyFile
)

// caSecrets loads the mesh CA shared by every wardend replica from Secrets.
type caSecrets struct {
	client    kubernetes.Interface
	namespace string
	identity  string // this replica, as the Lease holder
	log       *slog.Logger
	poll      time.Duration // how often a waiting replica looks for the Secret; 1s when zero
}

// load returns the CA and token signer, creating caSecret first if it is missing or
// incomplete. Only the replica holding the Lease creates it; the others wait for it.
func (s *caSecrets) load(ctx context.Context, trustDomain string) (*certs.CA, *certs.TokenSigner, error) {
	plugged, own, err := s.ensure(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The certs package reads the layout of a state directory; give it a private one.
	dir, err := os.MkdirTemp("", "wardend-ca-")
	if err != nil {
		return nil, nil, fmt.Errorf("mesh CA: %w", err)
	}
	defer os.RemoveAll(dir)
	files := map[string][]byte{certs.TokenKeyFile: own.Data[tokenKeyKey]}
	if plugged != nil {
		for _, name := range []string{certs.PluggedCertFile, certs.PluggedKeyFile, certs.PluggedRootFile, certs.PluggedChainFile} {
			if v, ok := plugged.Data[name]; ok {
				files[filepath.Join(certs.PluggedCADir, name)] = v
			}
		}
	} else {
		files[filepath.Join(certs.SelfCADir, certs.RootCertFile)] = own.Data[rootCertKey]
		files[filepath.Join(certs.SelfCADir, certs.RootKeyFile)] = own.Data[rootKeyKey]
	}
	if err := writeFiles(dir, files); err != nil {
		return nil, nil, fmt.Errorf("mesh CA: %w", err)
	}
	ca, err := certs.LoadOrCreateCA(dir, trustDomain, time.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("mesh CA from Secret %s/%s: %w", s.namespace, secretName(plugged), err)
	}
	signer, err := certs.LoadOrCreateTokenKey(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("token key from Secret %s/%s: %w", s.namespace, caSecret, err)
	}
	s.log.Info("mesh CA loaded", "secret", s.namespace+"/"+secretName(plugged), "tokenKey", signer.KeyID())
	return ca, signer, nil
}

func secretName(plugged *corev1.Secret) string {
	if plugged != nil {
		return pluggedCASecret
	}
	return caSecret
}

// ensure returns the plug-in Secret (nil when absent) and a complete caSecret.
func (s *caSecrets) ensure(ctx context.Context) (plugged, own *corev1.Secret, err error) {
	plugged, own, err = s.read(ctx)
	if err != nil || complete(plugged, own) {
		return plugged, own, err
	}
	s.log.Info("mesh CA Secret missing or incomplete; electing the replica that creates it",
		"secret", s.namespace+"/"+caSecret, "lease", s.namespace+"/"+caLease)
	poll := s.poll
	if poll == 0 {
		poll = time.Second
	}
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	created := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: s.namespace, Name: caLease},
			Client:     s.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: s.identity},
		},
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            caLease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { created <- s.createUntilComplete(lctx, poll) },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mesh CA lease: %w", err)
	}
	go elector.Run(ectx)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("waiting for Secret %s/%s: %w", s.namespace, caSecret, ctx.Err())
		case err := <-created:
			if err != nil {
				return nil, nil, err
			}
		case <-tick.C:
		}
		plugged, own, err = s.read(ctx)
		if err != nil || complete(plugged, own) {
			return plugged, own, err
		}
	}
}

// read gets both Secrets; a missing one is nil.
func (s *caSecrets) read(ctx context.Context) (plugged, own *corev1.Secret, err error) {
	get := func(name string) (*corev1.Secret, error) {
		sec, err := s.client.CoreV1().Secrets(s.namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read Secret %s/%s: %w", s.namespace, name, err)
		}
		return sec, nil
	}
	if plugged, err = get(pluggedCASecret); err != nil {
		return nil, nil, err
	}
	own, err = get(caSecret)
	return plugged, own, err
}

// complete reports whether the Secrets hold a whole CA and a token key.
func complete(plugged, own *corev1.Secret) bool {
	if own == nil || len(own.Data[tokenKeyKey]) == 0 {
		return false
	}
	return plugged != nil || (len(own.Data[rootCertKey]) > 0 && len(own.Data[rootKeyKey]) > 0)
}

// createUntilComplete runs on the Lease holder: it writes caSecret until it is complete,
// since a write that lost a race (a conflict) leaves that to the next attempt.
func (s *caSecrets) createUntilComplete(ctx context.Context, poll time.Duration) error {
	for {
		if err := s.create(ctx); err != nil {
			return err
		}
		plugged, own, err := s.read(ctx)
		if err != nil || complete(plugged, own) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil // the Lease was lost or wardend stops: the waiting loop decides
		case <-time.After(poll):
		}
	}
}

// create runs on the Lease holder: it adds whatever caSecret lacks, never replacing
// a key that exists (another replica may already use it).
func (s *caSecrets) create(ctx context.Context) error {
	plugged, own, err := s.read(ctx)
	if err != nil || complete(plugged, own) {
		return err
	}
	data := map[string][]byte{}
	if own != nil {
		for k, v := range own.Data {
			data[k] = v
		}
	}
	if err := generateMissing(data, plugged == nil); err != nil {
		return err
	}
	if own == nil {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: caSecret,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "wardend"}},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
		_, err = s.client.CoreV1().Secrets(s.namespace).Create(ctx, sec, metav1.CreateOptions{})
	} else {
		own = own.DeepCopy()
		own.Data = data
		_, err = s.client.CoreV1().Secrets(s.namespace).Update(ctx, own, metav1.UpdateOptions{})
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		return nil // another writer was first: read again
	}
	if err != nil {
		return fmt.Errorf("write Secret %s/%s: %w", s.namespace, caSecret, err)
	}
	s.log.Info("mesh CA Secret written", "secret", s.namespace+"/"+caSecret, "selfSignedRoot", plugged == nil)
	return nil
}

// generateMissing adds a token key and, when wantRoot, a self-signed root to data,
// made by the certs package in a throw-away state directory.
func generateMissing(data map[string][]byte, wantRoot bool) error {
	dir, err := os.MkdirTemp("", "wardend-ca-new-")
	if err != nil {
		return fmt.Errorf("generate mesh CA: %w", err)
	}
	defer os.RemoveAll(dir)
	if len(data[tokenKeyKey]) == 0 {
		if _, err := certs.LoadOrCreateTokenKey(dir); err != nil {
			return fmt.Errorf("generate token key: %w", err)
		}
		key, err := os.ReadFile(filepath.Join(dir, certs.TokenKeyFile))
		if err != nil {
			return fmt.Errorf("generate token key: %w", err)
		}
		data[tokenKeyKey] = key
	}
	if wantRoot && (len(data[rootCertKey]) == 0 || len(data[rootKeyKey]) == 0) {
		// The root does not depend on the trust domain: SVIDs carry it, the root does not.
		ca, err := certs.LoadOrCreateCA(dir, "cluster.local", time.Now)
		if err != nil {
			return fmt.Errorf("generate self-signed root: %w", err)
		}
		certPEM, keyPEM, _, _ := ca.PEM()
		data[rootCertKey], data[rootKeyKey] = certPEM, keyPEM
	}
	return nil
}

// writeFiles writes name -> content under dir with private permissions.
func writeFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		if len(data) == 0 {
			return fmt.Errorf("key %s of the Secret is empty", filepath.Base(name))
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
