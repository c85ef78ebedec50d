package translate

import (
	security "istio.io/api/security/v1beta1"

	"github.com/wardenmesh/warden/translate/authz"
	"github.com/wardenmesh/warden/watch"
)

type authzConfig = watch.Config[*security.AuthorizationPolicy]

// workloadAuthz is what applies to one workload: its AuthorizationPolicies, compiled
// by authz, and the diagnostics of attaching them.
type workloadAuthz struct {
	set   *authz.Set
	diags []watch.Diagnostic
}

// selectAuthz lists the policies that attach to a workload (attach): those of the
// root namespace and of its own namespace whose selector, if any, is a subset of its
// labels; policies with targetRefs never do. A rejected policy (no good version
// known) covers its whole namespace, or the mesh for the root namespace, because its
// selector is unknown (attachRejected): its scope denies every request.
func (x *Index) selectAuthz(w *watch.Workload) workloadAuthz {
	var out workloadAuthz
	wl := workloadOf(w)
	namespaces := []string{x.in.RootNamespace}
	if w.Namespace != x.in.RootNamespace {
		namespaces = append(namespaces, w.Namespace)
	}
	var attached []*authzConfig
	for _, ns := range namespaces {
		for _, c := range x.authzByNS[ns] {
			a := attach(x.in.RootNamespace, authzPolicyRef(c), wl)
			if a.diag != nil {
				out.diags = append(out.diags, *a.diag)
			}
			if a.attached() {
				attached = append(attached, c)
			}
		}
	}
	var rejected []*watch.Meta
	for _, ns := range namespaces {
		for i := range x.in.Rejected {
			m := &x.in.Rejected[i]
			if m.Kind == "AuthorizationPolicy" && m.Namespace == ns && attachRejected(x.in.RootNamespace, m, wl) != ScopeNone {
				rejected = append(rejected, m)
			}
		}
	}
	out.set = x.authz.Set(attached, rejected)
	return out
}
