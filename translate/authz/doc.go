// Package authz is Warden's model of Istio's AuthorizationPolicy, split as Istio
// splits pilot/pkg/security/authz into model, builder and matcher: it compiles each
// policy once per Input (Index, Set) into predicate trees, renders them as Envoy's
// RBAC and ext_authz filters, and evaluates the same trees for `wardenctl check`, so
// that what check says and what Envoy enforces come from one compiled form.
//
// Which policies apply to a proxy is not decided here: translate attaches every
// policy kind with one function (translate/attach.go) and hands the attached
// AuthorizationPolicies to Index.Set. translate also places the filters in its
// listeners and builds the clusters CUSTOM providers need (ProviderClusters).
//
// Where things are:
//   - rbac.go builds the RBAC filter rules (Envoy Permission/Principal trees, policy
//     names ns[<ns>]-policy[<name>]-rule[<i>]); filters.go wraps them, per action
//     AUDIT, DENY, ALLOW, and CUSTOM before them, into HTTP and network filters;
//     extauthz.go builds the ext_authz filters of CUSTOM providers; customGroups
//     (filters.go) decides per workload whether a provider is called or its rules
//     deny (unknown provider, or several providers without
//     PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS), for the filters and check alike.
//   - check.go evaluates a request for `wardenctl check` (Set.Evaluate), in Envoy's
//     order CUSTOM, AUDIT, DENY, ALLOW, with dry-run beside; translate resolves the
//     request's port, mTLS mode and caller first (translate.Check).
//   - policy.go, rule.go and condition.go compile policies, rules and conditions;
//     match.go holds the predicates both the RBAC builder and the evaluator read;
//     path.go the path normalization both apply.
package authz
