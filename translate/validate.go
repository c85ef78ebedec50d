package translate

import (
	"fmt"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wardenmesh/warden/watch"
)

const (
	severityError   = "error"
	severityWarning = "warning"
)

// translationError reports a failure to build resources at all.
func translationError(what string, err error) watch.Diagnostic {
	return watch.Diagnostic{
		Severity: severityError,
		Kind:     "Translation",
		Message:  fmt.Sprintf("translate %s: %v", what, err),
	}
}

// resourceName is the xDS name of a resource: its name, or for endpoints the
// cluster name.
func resourceName(r types.Resource) string {
	switch v := r.(type) {
	case *endpoint.ClusterLoadAssignment:
		return v.GetClusterName()
	case interface{ GetName() string }:
		return v.GetName()
	default:
		return ""
	}
}

// validated drops every resource that fails its proto validation and reports it; a
// resource Envoy would reject must not be served.
func validated(diags *[]watch.Diagnostic, rs []types.Resource) []types.Resource {
	out := rs[:0:0]
	for _, r := range rs {
		if err := validate(r); err != nil {
			*diags = append(*diags, translationError(resourceName(r), err))
			continue
		}
		out = append(out, r)
	}
	return out
}

func validate(r types.Resource) error {
	v, ok := r.(interface{ ValidateAll() error })
	if !ok {
		return fmt.Errorf("%T has no validation", r)
	}
	if err := v.ValidateAll(); err != nil {
		return fmt.Errorf("invalid %T: %w", r, err)
	}
	return nil
}

// validatedRoutes validates outbound route configurations whose virtual hosts were
// validated when they were cached: only the configuration's own fields are checked
// here, which keeps a large mesh from re-validating every host per namespace.
func validatedRoutes(diags *[]watch.Diagnostic, rs []types.Resource) []types.Resource {
	out := rs[:0:0]
	for _, r := range rs {
		rc, ok := r.(*route.RouteConfiguration)
		if !ok {
			out = append(out, validated(diags, []types.Resource{r})...)
			continue
		}
		shell := &route.RouteConfiguration{Name: rc.GetName(), ValidateClusters: rc.GetValidateClusters()}
		if err := validate(shell); err != nil {
			*diags = append(*diags, translationError(rc.GetName(), err))
			continue
		}
		out = append(out, r)
	}
	return out
}
