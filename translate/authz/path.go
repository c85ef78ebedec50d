package authz

import (
	"strings"

	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
)

// PathNormalization applies MeshConfig pathNormalization to an HCM, as Istio does:
// the normalised path is what RBAC evaluates and what the application receives, and
// what NormalizePath computes for `wardenctl check`.
func PathNormalization(mesh *meshv1alpha1.MeshConfig, m *hcm.HttpConnectionManager) {
	m.PathWithEscapedSlashesAction = hcm.HttpConnectionManager_KEEP_UNCHANGED
	m.NormalizePath = wrapperspb.Bool(true)
	switch mesh.GetPathNormalization().GetNormalization() {
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_NONE:
		m.NormalizePath = wrapperspb.Bool(false)
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_MERGE_SLASHES:
		m.MergeSlashes = true
	case meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES:
		m.MergeSlashes = true
		m.PathWithEscapedSlashesAction = hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD
	}
}

// NormalizePath is what Envoy does to a request path before RBAC sees it under the
// mesh's normalization: the query and fragment are cut off (RBAC url_path ignores
// them), backslashes become slashes, percent-encoded unreserved characters are
// decoded, dot segments are removed (RFC 3986), and per mode slashes are merged and
// %2F / %5C decoded.
func NormalizePath(p string, mode meshv1alpha1.MeshConfig_ProxyPathNormalization_NormalizationType) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if mode == meshv1alpha1.MeshConfig_ProxyPathNormalization_NONE {
		return p
	}
	if mode == meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES {
		for _, esc := range []string{"%2F", "%2f"} {
			p = strings.ReplaceAll(p, esc, "/")
		}
		for _, esc := range []string{"%5C", "%5c"} {
			p = strings.ReplaceAll(p, esc, `\`)
		}
	}
	p = strings.ReplaceAll(p, `\`, "/")
	p = decodeUnreserved(p)
	p = removeDotSegments(p)
	if mode == meshv1alpha1.MeshConfig_ProxyPathNormalization_MERGE_SLASHES ||
		mode == meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES {
		for strings.Contains(p, "//") {
			p = strings.ReplaceAll(p, "//", "/")
		}
	}
	return p
}

// decodeUnreserved decodes %XX escapes of ALPHA, DIGIT, "-", ".", "_", "~".
func decodeUnreserved(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if c, ok := unhex2(p[i+1], p[i+2]); ok && isUnreserved(c) {
				sb.WriteByte(c)
				i += 2
				continue
			}
		}
		sb.WriteByte(p[i])
	}
	return sb.String()
}

func unhex2(a, b byte) (byte, bool) {
	h, ok1 := unhex(a)
	l, ok2 := unhex(b)
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

// removeDotSegments is RFC 3986 section 5.2.4 on an absolute path.
func removeDotSegments(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}
