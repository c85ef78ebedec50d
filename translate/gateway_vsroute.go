package translate

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/wardenmesh/warden/watch"
)

// vsRoutes translates the HTTP routes of a VirtualService as seen by the gateway
// server s on port. Routes without destinations (redirect, direct response,
// delegate) and unsupported match fields are reported and left out, never widened.
func (b *builder) vsRoutes(vs *virtualService, s gatewayServer, port uint32) []*route.Route {
	var out []*route.Route
	for i, hr := range vs.Spec.GetHttp() {
		field := "spec.http[" + strconv.Itoa(i) + "]"
		if len(hr.GetRoute()) == 0 {
			b.diag(severityWarning, &vs.Meta, field,
				"only routes to destinations are supported on gateways (no redirect, directResponse or delegate): route ignored")
			continue
		}
		b.warnIgnoredRouteFields(vs, field, hr)
		action, ok := b.vsRouteAction(vs, field, hr)
		if !ok {
			continue
		}
		name := hr.GetName()
		if name == "" {
			name = vs.Namespace + "/" + vs.Name + "." + strconv.Itoa(i)
		}
		matches := hr.GetMatch()
		if len(matches) == 0 {
			matches = []*networking.HTTPMatchRequest{{}}
		}
		for j, m := range matches {
			rm, ok := b.vsRouteMatch(vs, field+".match["+strconv.Itoa(j)+"]", m, s, port)
			if !ok {
				continue
			}
			out = append(out, &route.Route{Name: name, Match: rm, Action: &route.Route_Route{Route: action}})
		}
	}
	return out
}

func (b *builder) warnIgnoredRouteFields(vs *virtualService, field string, hr *networking.HTTPRoute) {
	ignored := map[string]bool{
		"rewrite": hr.GetRewrite() != nil, "retries": hr.GetRetries() != nil, "fault": hr.GetFault() != nil,
		"mirror": hr.GetMirror() != nil || len(hr.GetMirrors()) > 0, "corsPolicy": hr.GetCorsPolicy() != nil,
		"headers": hr.GetHeaders() != nil,
	}
	for _, k := range slices.Sorted(maps.Keys(ignored)) {
		if ignored[k] {
			b.diag(severityWarning, &vs.Meta, field+"."+k, k+" is not supported on gateways: ignored")
		}
	}
}

// vsRouteAction sends to the route's destinations, weighted when there are several.
func (b *builder) vsRouteAction(vs *virtualService, field string, hr *networking.HTTPRoute) (*route.RouteAction, bool) {
	type dest struct {
		cluster string
		weight  uint32
	}
	var dests []dest
	var total uint32
	for i, d := range hr.GetRoute() {
		f := field + ".route[" + strconv.Itoa(i) + "].destination"
		cluster, ok := b.destinationCluster(vs, f, d.GetDestination())
		if !ok {
			return nil, false
		}
		w := uint32(max(d.GetWeight(), 0))
		total += w
		dests = append(dests, dest{cluster, w})
	}
	a := &route.RouteAction{Timeout: duration(hr.GetTimeout().AsDuration())}
	if len(dests) == 1 {
		a.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: dests[0].cluster}
		return a, true
	}
	wc := &route.WeightedCluster{}
	for _, d := range dests {
		switch {
		case total == 0:
			d.weight = 1 // no weights given: share evenly
		case d.weight == 0:
			continue
		}
		wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{Name: d.cluster, Weight: wrapperspb.UInt32(d.weight)})
	}
	a.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: wc}
	return a, true
}

// destinationCluster is outbound|<port>||<fqdn> of a destination. A short host is in
// the VirtualService's namespace; the port may be left out when the Service has one.
func (b *builder) destinationCluster(vs *virtualService, field string, d *networking.Destination) (string, bool) {
	host := d.GetHost()
	if !strings.Contains(host, ".") {
		suffix := b.in.DomainSuffix
		if suffix == "" {
			suffix = watch.DefaultDomainSuffix
		}
		host = host + "." + vs.Namespace + ".svc." + suffix
	}
	svc := b.in.ServiceByHost(host)
	port := d.GetPort().GetNumber()
	if port == 0 && svc != nil && len(svc.Ports) == 1 {
		port = svc.Ports[0].Port
	}
	if port == 0 {
		b.diag(severityError, &vs.Meta, field+".port",
			"the destination port is required ("+host+" does not have exactly one port): route ignored")
		return "", false
	}
	if svc == nil {
		b.diag(severityWarning, &vs.Meta, field+".host", "no Service "+host+": requests get 503")
	}
	if d.GetSubset() != "" {
		b.diag(severityWarning, &vs.Meta, field+".subset", "subsets are not supported: every endpoint of "+host+" is used")
	}
	return outboundCluster(port, host), true
}

// vsRouteMatch translates one match; ok is false when it cannot match on this
// gateway (another port, gateway or source) or uses a field Warden cannot honour.
func (b *builder) vsRouteMatch(vs *virtualService, field string, m *networking.HTTPMatchRequest, s gatewayServer, port uint32) (*route.RouteMatch, bool) {
	if m.GetPort() != 0 && m.GetPort() != port {
		return nil, false
	}
	if gws := m.GetGateways(); len(gws) > 0 {
		only := &virtualService{Meta: vs.Meta, Spec: &networking.VirtualService{Gateways: gws}}
		if !vsBindsGateway(only, s.gw) {
			return nil, false
		}
	}
	if len(m.GetSourceLabels()) > 0 || m.GetSourceNamespace() != "" {
		b.diag(severityWarning, &vs.Meta, field, "sourceLabels and sourceNamespace do not apply to gateways: match ignored")
		return nil, false
	}
	rm := &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}
	if u := m.GetUri(); u != nil {
		switch u.GetMatchType().(type) {
		case *networking.StringMatch_Exact:
			rm.PathSpecifier = &route.RouteMatch_Path{Path: u.GetExact()}
		case *networking.StringMatch_Prefix:
			rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: u.GetPrefix()}
		case *networking.StringMatch_Regex:
			rm.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: u.GetRegex()}}
		}
	}
	if m.GetIgnoreUriCase() {
		rm.CaseSensitive = boolValue(false)
	}
	headers := map[string]*networking.StringMatch{}
	for k, v := range m.GetHeaders() {
		if strings.HasPrefix(k, "@") {
			mm, ok := b.claimMatch(vs, field+".headers["+k+"]", k, v)
			if !ok {
				return nil, false
			}
			rm.DynamicMetadata = append(rm.DynamicMetadata, mm)
			continue
		}
		headers[strings.ToLower(k)] = v
	}
	for k, v := range map[string]*networking.StringMatch{":method": m.GetMethod(), ":authority": m.GetAuthority(), ":scheme": m.GetScheme()} {
		if v != nil {
			headers[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		rm.Headers = append(rm.Headers, vsHeaderMatch(k, headers[k], false))
	}
	without := m.GetWithoutHeaders()
	for _, k := range slices.Sorted(maps.Keys(without)) {
		if strings.HasPrefix(k, "@") {
			mm, ok := b.claimMatch(vs, field+".withoutHeaders["+k+"]", k, without[k])
			if !ok {
				return nil, false
			}
			mm.Invert = true
			rm.DynamicMetadata = append(rm.DynamicMetadata, mm)
			continue
		}
		rm.Headers = append(rm.Headers, vsHeaderMatch(strings.ToLower(k), without[k], true))
	}
	slices.SortStableFunc(rm.DynamicMetadata, func(a, c *matcher.MetadataMatcher) int {
		return strings.Compare(metadataPathString(a), metadataPathString(c))
	})
	qp := m.GetQueryParams()
	for _, k := range slices.Sorted(maps.Keys(qp)) {
		q := &route.QueryParameterMatcher{Name: k}
		if sm := vsStringMatcher(qp[k]); sm != nil {
			q.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_StringMatch{StringMatch: sm}
		} else {
			q.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		}
		rm.QueryParameters = append(rm.QueryParameters, q)
	}
	return rm, true
}

// vsHeaderMatch matches a header against an Istio StringMatch; an empty StringMatch
// means the header is present.
func vsHeaderMatch(name string, v *networking.StringMatch, invert bool) *route.HeaderMatcher {
	h := &route.HeaderMatcher{Name: name, InvertMatch: invert}
	if sm := vsStringMatcher(v); sm != nil {
		h.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: sm}
	} else {
		h.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return h
}

func vsStringMatcher(v *networking.StringMatch) *matcher.StringMatcher {
	switch v.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v.GetExact()}}
	case *networking.StringMatch_Prefix:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: v.GetPrefix()}}
	case *networking.StringMatch_Regex:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: v.GetRegex()}}}
	}
	return nil
}
