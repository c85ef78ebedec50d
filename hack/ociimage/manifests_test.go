package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The image has no shell: every container in deploy/ that runs it must start one of its
// binaries directly (or the entrypoint, wardend).
func TestManifestsRunImageWithoutShell(t *testing.T) {
	root := filepath.Join("..", "..", "deploy")
	allowed := []string{"wardend", "wardenctl", "/usr/local/bin/wardend", "/usr/local/bin/wardenctl"}
	seen := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var obj any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				return fmt.Errorf("%s: document %d: %w", p, i+1, err)
			}
			walkContainers(obj, func(c map[string]any) {
				image, _ := c["image"].(string)
				if !strings.HasPrefix(image, "wardend:") && !strings.Contains(image, "/wardend:") {
					return
				}
				seen++
				cmd, _ := c["command"].([]any)
				if len(cmd) == 0 {
					return
				}
				if first, _ := cmd[0].(string); !slices.Contains(allowed, first) {
					t.Errorf("%s: container %v runs %q from the wardend image, which has no shell; run wardend or wardenctl directly", p, c["name"], cmd)
				}
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatalf("no container in %s runs the wardend image", root)
	}
}

// walkContainers calls fn for every map under v that looks like a container (has name
// and image).
func walkContainers(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["image"].(string); ok {
			if _, ok := x["name"]; ok {
				fn(x)
			}
		}
		for _, c := range x {
			walkContainers(c, fn)
		}
	case []any:
		for _, c := range x {
			walkContainers(c, fn)
		}
	}
}
