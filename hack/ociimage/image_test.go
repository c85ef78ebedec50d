package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wardenmesh/warden/cmd/wardenctl/capture"
)

// TestImage builds the image the way `make image` does, twice, and checks what a
// cluster relies on: the same inputs give the same archive and digest; the archive
// names the tag (kind load image-archive) and validates; the config starts wardend as a
// non-root user; there is no shell; and the image's own binaries work on their own: its
// rootfs, extracted and used as a chroot, runs wardend as nonroot, `wardenctl bootstrap
// --help` as the proxy uid, and `wardenctl capture apply` (iptables-restore and iptables
// from the image, with the image's libraries and extensions) as root in a fresh network
// namespace, as the injected init containers do.
func TestImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test chroots into the image and installs iptables rules in a private network namespace: run as root (make test does)")
	}
	start := time.Now()
	dir := t.TempDir()
	wardend, wardenctl, err := BuildBinaries("../..", filepath.Join(dir, "bin"), "")
	if err != nil {
		t.Fatal(err)
	}
	built := time.Now()

	const tag = "wardend:image-test"
	var archives []string
	var digests []v1.Hash
	var builtImg v1.Image
	for i := range 2 {
		// The second build reads copies of the binaries from another directory: where the
		// inputs live must not matter.
		o := Options{Wardend: wardend, Wardenctl: wardenctl, Created: time.Unix(0, 0)}
		if i == 1 {
			o.Wardend, o.Wardenctl = copyTo(t, wardend, filepath.Join(dir, "copy")), copyTo(t, wardenctl, filepath.Join(dir, "copy"))
		}
		img, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("image-%d.tar", i))
		if err := WriteArchive(p, tag, img); err != nil {
			t.Fatal(err)
		}
		archives = append(archives, p)
		digests = append(digests, d)
		builtImg = img
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds from the same inputs: digests %s and %s differ", digests[0], digests[1])
	}
	if a, b := fileSum(t, archives[0]), fileSum(t, archives[1]); a != b {
		t.Errorf("two builds from the same inputs: archives differ (sha256 %x and %x)", a, b)
	}

	// Read the archive back as a loader would.
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archives[0], &ref)
	if err != nil {
		t.Fatalf("the archive does not hold %s: %v", tag, err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("the image does not validate: %v", err)
	}
	manifest := readManifestJSON(t, archives[0])
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{tag}) {
		t.Errorf("manifest.json names %+v, want one image tagged %s", manifest, tag)
	}
	if a, b := configName(t, builtImg), configName(t, img); a != b {
		t.Errorf("the archive's image id %s differs from the built image's %s", b, a)
	}

	// The OCI layout (-oci-layout) holds the same image, named both ways.
	oci := filepath.Join(dir, "oci")
	if err := writeLayout(oci, tag, builtImg); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != digests[0] ||
		im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "image-test" ||
		im.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/"+tag {
		t.Errorf("OCI layout index: %+v, want the one image %s named %s", im.Manifests, digests[0], tag)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/wardend"}) {
		t.Errorf("entrypoint %q, want [/usr/local/bin/wardend]", cfg.Config.Entrypoint)
	}
	uid, _, _ := strings.Cut(cfg.Config.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("user %q: want a numeric non-root uid (the kubelet checks runAsNonRoot against it)", cfg.Config.User)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if !cfg.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %s, want the Unix epoch (SOURCE_DATE_EPOCH unset)", cfg.Created.Time)
	}
	pathEnv := ""
	for _, e := range cfg.Config.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	if pathEnv == "" {
		t.Fatalf("no PATH in the config's env %q: the injected containers run `wardenctl` by name", cfg.Config.Env)
	}

	// Extract the layers in order, as a container runtime does.
	root := filepath.Join(dir, "rootfs")
	names := extract(t, img, root)
	for _, n := range names {
		switch path.Base(n) {
		case "sh", "bash", "dash", "ash", "zsh", "busybox":
			t.Errorf("the image has a shell: %s", n)
		}
	}
	for _, p := range []string{"/usr/local/bin/wardend", "/usr/local/bin/wardenctl", "/usr/sbin/iptables-restore", "/usr/sbin/iptables", "/usr/sbin/iptables-save"} {
		found := false
		for _, dirPath := range strings.Split(pathEnv, ":") {
			if path.Dir(p) == dirPath {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is not on the image's PATH %s", p, pathEnv)
		}
		fi, err := os.Stat(resolveIn(t, root, p))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s: not an executable file in the image (%v)", p, err)
		}
	}
	inspected := time.Now()

	// kind load image-archive pipes the archive into this command on each node; the
	// kubelet then finds the image by its normalized name. The image id is the config's
	// digest. Then a real runtime (runc) runs it as the image's user: wardend starts, and
	// wardenctl capture apply is refused by iptables ("you must be root"), as a non-root user must be.
	ctd := startContainerd(t, filepath.Join(dir, "containerd"))
	ctx := t.Context()
	archive, err := os.ReadFile(archives[0])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ctd.ctr(ctx, archive, "images", "import", "--all-platforms", "--digests", "--snapshotter=native", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	full := "docker.io/library/" + tag
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ctd.imageConfig(ctx, full); err != nil || got != id.String() {
		t.Errorf("after ctr images import: %s has config %q (%v), want the image id %s", full, got, err, id)
	}
	if out, err := ctd.ctr(ctx, nil, "run", "--rm", "--snapshotter=native", full, "wardend-help", "/usr/local/bin/wardend", "--help"); err != nil || !strings.Contains(out, "Usage") {
		t.Errorf("wardend --help in containerd: %v\n%s", err, out)
	}
	if out, err := ctd.ctr(ctx, nil, "run", "--rm", "--snapshotter=native", full, "capture-nonroot", "wardenctl", "capture", "apply"); err == nil || !strings.Contains(out, "Permission denied (you must be root)") {
		t.Errorf("wardenctl capture apply as the image's user in containerd: want iptables to refuse it (not root), got %v\n%s", err, out)
	}
	loaded := time.Now()

	// What a container runtime adds to every container: /dev/null (Go's os/exec opens
	// it for a child's unset stdin). /dev is never part of an image.
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(root, "dev", "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatal(err)
	}

	// wardenctl as the bootstrap init container's uid.
	if out, err := chrooted(root, pathEnv, ProxyUID, "/usr/local/bin/wardenctl", "bootstrap", "--help"); err != nil || !strings.Contains(out, "Usage") {
		t.Errorf("wardenctl bootstrap --help as uid %d in the image: %v\n%s", ProxyUID, err, out)
	}

	// The capture init container: wardenctl (found on PATH, as the kubelet runs it)
	// installs the rules with the image's iptables-restore; the second apply removes the
	// first one's rules with the image's iptables. The image's iptables-save reads them.
	var saved string
	err = inFreshNetns(func() error {
		for range 2 {
			if out, err := chrooted(root, pathEnv, 0, "wardenctl", "capture", "apply"); err != nil {
				return fmt.Errorf("wardenctl capture apply in the image: %w\n%s", err, out)
			}
		}
		out, err := chrooted(root, pathEnv, 0, "iptables-save", "-t", "nat")
		if err != nil {
			return fmt.Errorf("iptables-save in the image: %w\n%s", err, out)
		}
		saved = out
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := capture.DefaultConfig()
	for _, want := range []string{
		"-A PREROUTING -p tcp -j " + capture.ChainInbound,
		"-A OUTPUT -p tcp -j " + capture.ChainOutput,
		fmt.Sprintf("-A %s -p tcp -j REDIRECT --to-ports %d", capture.ChainInRedirect, d.InboundPort),
		fmt.Sprintf("-A %s -p tcp -j REDIRECT --to-ports %d", capture.ChainRedirect, d.OutboundPort),
		fmt.Sprintf("-A %s -m owner --uid-owner %d -j RETURN", capture.ChainOutput, d.ProxyUID),
		fmt.Sprintf("-A %s -p tcp -m tcp --dport %d -j RETURN", capture.ChainInbound, d.ExcludeInboundPorts[0]),
	} {
		if n := strings.Count(saved, want+"\n"); n != 1 {
			t.Errorf("after two applies in the image, %q appears %d times, want once:\n%s", want, n, saved)
		}
	}
	t.Logf("cost: build binaries %s, build twice and inspect %s, containerd import and run %s, chroot runs %s",
		built.Sub(start).Round(time.Millisecond), inspected.Sub(built).Round(time.Millisecond),
		loaded.Sub(inspected).Round(time.Millisecond), time.Since(loaded).Round(time.Millisecond))
}

// chrooted runs argv in root as uid:uid with only PATH in its environment, the way a
// container runtime starts the image's processes (no shell in between). A name without
// a slash is looked up on pathEnv inside root.
func chrooted(root, pathEnv string, uid uint32, argv ...string) (string, error) {
	prog := argv[0]
	if !strings.Contains(prog, "/") {
		for _, d := range strings.Split(pathEnv, ":") {
			if _, err := os.Stat(filepath.Join(root, d, prog)); err == nil {
				prog = path.Join(d, prog)
				break
			}
		}
		if !strings.Contains(prog, "/") {
			return "", fmt.Errorf("%s is not on PATH %s in the image", prog, pathEnv)
		}
	}
	cmd := &exec.Cmd{Path: prog, Args: argv, Env: []string{"PATH=" + pathEnv}, Dir: "/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// inFreshNetns runs fn on an OS thread moved into a new, empty network namespace, so the
// processes it starts see only that namespace. The thread is discarded afterwards.
func inFreshNetns(fn func() error) error {
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

// extract unpacks img's layers in order into root and returns every path it wrote.
func extract(t *testing.T, img v1.Image, root string) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			n := path.Clean(h.Name)
			if path.IsAbs(n) || strings.HasPrefix(n, "../") || n == ".." {
				t.Fatalf("layer %d: unsafe path %q", i, h.Name)
			}
			names = append(names, n)
			dst := filepath.Join(root, n)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(dst, 0o755); err != nil {
					t.Fatal(err)
				}
				// chmod after mkdir: the umask must not narrow /tmp's 1777.
				if err := os.Chmod(dst, os.FileMode(h.Mode).Perm()|modeBits(h.Mode)); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(f, tr); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			case tar.TypeSymlink:
				if err := os.Symlink(h.Linkname, dst); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("layer %d: %s has tar type %q; the image should hold only files, directories and symlinks", i, n, h.Typeflag)
			}
			if err := os.Lchown(dst, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
		rc.Close()
	}
	return names
}

func modeBits(m int64) os.FileMode {
	var b os.FileMode
	if m&0o1000 != 0 {
		b |= os.ModeSticky
	}
	return b
}

// resolveIn follows the symlinks of the image path p inside root (absolute targets are
// relative to root, as in a chroot) and returns the host path of the file it names.
func resolveIn(t *testing.T, root, p string) string {
	t.Helper()
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
		cur := "/"
		redirected := false
		for i, c := range parts {
			next := path.Join(cur, c)
			fi, err := os.Lstat(filepath.Join(root, next))
			if err != nil {
				return filepath.Join(root, next)
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				target, err := os.Readlink(filepath.Join(root, next))
				if err != nil {
					t.Fatal(err)
				}
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				p = path.Join(append([]string{target}, parts[i+1:]...)...)
				redirected = true
				break
			}
			cur = next
		}
		if !redirected {
			return filepath.Join(root, cur)
		}
	}
	t.Fatalf("%s: too many symlinks in the image", p)
	return ""
}

func copyTo(t *testing.T, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func readManifestJSON(t *testing.T, archive string) []struct{ RepoTags []string } {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no manifest.json: %v", archive, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatalf("%s: manifest.json: %v", archive, err)
		}
		return m
	}
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
