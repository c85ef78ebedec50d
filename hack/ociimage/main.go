// Command ociimage builds the wardend container image without Docker or any base image:
// a reproducible OCI image from scratch holding wardend and wardenctl (static Go
// binaries), iptables (legacy backend) with the shared libraries and extensions it
// loads, copied from the host's Debian packages (`make deps`), and a nonroot user. There
// is no shell. `make image` runs it:
//
//	go run ./hack/ociimage -tag wardend:dev -out bin/wardend-image.tar [-oci-layout dir]
//
// It builds wardend and wardenctl itself (BuildFlags, from the module in the current
// directory) unless -wardend and -wardenctl name binaries.
//
// The archive is in `docker save` format (manifest.json with the tag), which
// `kind load image-archive` (ctr images import) loads under the tag. The same binaries,
// host files and SOURCE_DATE_EPOCH give the same bytes and digests.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run() error {
	var o Options
	var tag, out, ociDir string
	flag.StringVar(&o.Wardend, "wardend", "", "wardend binary to use (default: build it with BuildFlags)")
	flag.StringVar(&o.Wardenctl, "wardenctl", "", "wardenctl binary to use (default: build it with BuildFlags)")
	flag.StringVar(&o.HostRoot, "host-root", "/", "copy iptables, its libraries and the CA roots from below this directory")
	flag.StringVar(&tag, "tag", "wardend:dev", "image name recorded in the archive")
	flag.StringVar(&out, "out", "bin/wardend-image.tar", "`docker save`-style archive to write (loadable with kind load image-archive)")
	flag.StringVar(&ociDir, "oci-layout", "", "also write an OCI image layout to this directory (replaced)")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	o.Created = created
	if o.Wardend == "" || o.Wardenctl == "" {
		dir, err := os.MkdirTemp("", "ociimage-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.Wardend, o.Wardenctl, err = BuildBinaries(".", dir, o.Arch); err != nil {
			return err
		}
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	if err := WriteArchive(out, tag, img); err != nil {
		return err
	}
	if ociDir != "" {
		if err := writeLayout(ociDir, tag, img); err != nil {
			return err
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Printf("image %s: %s (%d bytes)\n  manifest digest %s\n  image id (config digest) %s\n", tag, out, fi.Size(), digest, id)
	if ociDir != "" {
		fmt.Printf("  OCI layout: %s\n", ociDir)
	}
	return nil
}

// sourceDateEpoch is the reproducible-builds timestamp: unset means the Unix epoch.
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func parseTag(tag string) (name.Tag, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return name.Tag{}, fmt.Errorf("-tag %q: want repository:tag (for example wardend:dev): %w", tag, err)
	}
	return ref, nil
}

// writeLayout writes an OCI image layout whose index names the image both ways
// containerd reads (full name) and the OCI spec defines (the tag).
func writeLayout(dir, tag string, img v1.Image) error {
	ref, err := parseTag(tag)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          containerdName(ref),
	}))
}

// containerdName is the name containerd and the kubelet use for ref: Docker Hub is
// "docker.io" (go-containerregistry says "index.docker.io").
func containerdName(ref name.Tag) string {
	reg := ref.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.RepositoryStr() + ":" + ref.TagStr()
}
