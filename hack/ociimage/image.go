package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's users. wardend runs as nonroot; the injected bootstrap init container runs
// wardenctl as the proxy's uid (inject.Config.ProxyUID, Istio's 1337); the capture init
// container runs as root.
const (
	NonrootUID = 65532
	ProxyUID   = 1337
	Entrypoint = "/usr/local/bin/wardend"
	PathEnv    = "PATH=/usr/local/bin:/usr/sbin"
)

// Options are the inputs of one image. The same inputs give the same bytes.
type Options struct {
	Wardend   string    // path of the wardend binary (static, CGO_ENABLED=0)
	Wardenctl string    // path of the wardenctl binary
	HostRoot  string    // iptables, its libraries and CA roots are copied from here ("/")
	Created   time.Time // the config's created time and every file's mtime
	Arch      string    // GOARCH of the binaries and of the host's iptables ("" = runtime.GOARCH)
}

// iptablesNames are the commands xtables-legacy-multi answers to by argv[0]; the image
// has only the legacy backend (no nftables needed in the node's kernel), as `make deps`
// selects on the test machines.
var iptablesNames = []string{
	"iptables", "iptables-restore", "iptables-save",
	"iptables-legacy", "iptables-legacy-restore", "iptables-legacy-save",
	"ip6tables", "ip6tables-restore", "ip6tables-save",
	"ip6tables-legacy", "ip6tables-legacy-restore", "ip6tables-legacy-save",
}

// caBundle is where Debian's ca-certificates (and Go's crypto/x509) keep the roots;
// wardend fetches RequestAuthentication jwksUri keys over HTTPS.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

func triplet(arch string) (string, error) {
	switch arch {
	case "amd64":
		return "x86_64-linux-gnu", nil
	case "arm64":
		return "aarch64-linux-gnu", nil
	}
	return "", fmt.Errorf("architecture %q: only amd64 and arm64 are supported", arch)
}

// Build assembles the image from scratch in three layers: base files (users, /tmp, /run,
// CA roots), iptables (legacy) with everything it loads, and the two Warden binaries.
func Build(o Options) (v1.Image, error) {
	if o.HostRoot == "" {
		o.HostRoot = "/"
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	trip, err := triplet(o.Arch)
	if err != nil {
		return nil, err
	}

	base := newTree(o.HostRoot)
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nistio-proxy:x:%d:%d:proxy:/:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n",
		ProxyUID, ProxyUID, NonrootUID, NonrootUID)
	group := fmt.Sprintf("root:x:0:\nistio-proxy:x:%d:\nnonroot:x:%d:\n", ProxyUID, NonrootUID)
	for _, err := range []error{
		base.file("etc/passwd", 0o644, []byte(passwd)),
		base.file("etc/group", 0o644, []byte(group)),
		base.dir("root", 0o700, 0),
		base.dir("home/nonroot", 0o700, NonrootUID),
		base.dir("tmp", 0o1777, 0),
		base.dir("run", 0o755, 0), // iptables takes /run/xtables.lock
		base.hostPath(caBundle),
	} {
		if err != nil {
			return nil, err
		}
	}

	ipt := newTree(o.HostRoot)
	multi := "/usr/sbin/xtables-legacy-multi"
	elfs := []string{multi}
	xtDir := path.Join("/usr/lib", trip, "xtables")
	mods, err := filepath.Glob(filepath.Join(o.HostRoot, filepath.FromSlash(xtDir), "*.so"))
	if err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no iptables extensions in %s on the host (run `make deps`, which installs iptables)", xtDir)
	}
	sort.Strings(mods)
	for _, m := range mods {
		elfs = append(elfs, path.Join(xtDir, filepath.Base(m)))
	}
	if err := ipt.elfClosure(trip, elfs...); err != nil {
		return nil, err
	}
	for _, n := range iptablesNames {
		if err := ipt.symlink("usr/sbin/"+n, "xtables-legacy-multi"); err != nil {
			return nil, err
		}
	}

	bins := newTree(o.HostRoot)
	for _, b := range []struct{ name, src string }{{"wardend", o.Wardend}, {"wardenctl", o.Wardenctl}} {
		if b.src == "" {
			return nil, fmt.Errorf("no %s binary given", b.name)
		}
		if err := bins.hostFile("usr/local/bin/"+b.name, b.src); err != nil {
			return nil, err
		}
	}

	var adds []mutate.Addendum
	for _, l := range []struct {
		t    *tree
		what string
	}{
		{base, "base files: users root, istio-proxy (1337), nonroot (65532); /tmp, /run; CA roots"},
		{ipt, "iptables (legacy) from the host's Debian packages, with its libraries and extensions"},
		{bins, "wardend and wardenctl"},
	} {
		tb, err := l.t.tarball(o.Created)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(tb)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "hack/ociimage: " + l.what, Comment: ""}})
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: o.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{Entrypoint},
			User:       fmt.Sprintf("%d:%d", NonrootUID, NonrootUID),
			Env:        []string{PathEnv},
			WorkingDir: "/",
			Labels: map[string]string{
				"org.opencontainers.image.source":      "https://github.com/wardenmesh/warden",
				"org.opencontainers.image.description": "Warden: wardend (xDS control plane) and wardenctl (sidecar init: capture, bootstrap)",
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, adds...)
}

// WriteArchive writes img as a `docker save`-style archive (manifest.json naming tag) to
// path, through a temporary file so a failed write leaves no half archive. This is the
// format `kind load docker-image` itself hands to the node's `ctr images import`, so
// `kind load image-archive` loads it under tag.
func WriteArchive(p, tag string, img v1.Image) error {
	ref, err := parseTag(tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".ociimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(ref, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// BuildFlags are the go build flags of the image's binaries (with CGO_ENABLED=0: static,
// no libc needed): no host paths, no symbol tables, no build id, no VCS stamp (a dirty
// worktree would change it): the same sources and toolchain give the same bytes.
var BuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}

// BuildBinaries builds wardend and wardenctl of the module in modDir into outDir for
// linux/arch ("" = runtime.GOARCH) and returns their paths.
func BuildBinaries(modDir, outDir, arch string) (wardend, wardenctl string, err error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	args := append(append([]string{"build"}, BuildFlags...), "-o", outDir+string(filepath.Separator), "./cmd/wardend", "./cmd/wardenctl")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(outDir, "wardend"), filepath.Join(outDir, "wardenctl"), nil
}
