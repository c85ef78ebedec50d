package scenario

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// pathRef matches `${path:PATH}` (format "egress"): the absolute path of an existing
// file, PATH relative to the scenario file. Proxies read files named in manifests (a
// DestinationRule's caCertificates) from the node's filesystem, which the runner's
// pods share.
var pathRef = regexp.MustCompile(`\$\{path:([^}]+)\}`)

func (s *substituter) expandPaths(path, text string) string {
	if !strings.Contains(text, "${path:") {
		return text
	}
	return pathRef.ReplaceAllStringFunc(text, func(ref string) string {
		rel := pathRef.FindStringSubmatch(ref)[1]
		file := rel
		if !filepath.IsAbs(file) {
			file = filepath.Join(s.dir, file)
		}
		abs, err := filepath.Abs(file)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			s.p.add(path, "${path:"+rel+"}: "+err.Error())
			return ref
		}
		return abs
	})
}
