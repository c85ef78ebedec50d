package watch

import (
	"cmp"
	"net/netip"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// labelServiceName links an EndpointSlice to its Service.
const labelServiceName = "kubernetes.io/service-name"

// index holds the lookups over one Input, built once by Build.
type index struct {
	workloadsByPod map[string]*Workload   // "ns/pod"
	workloadsByNs  map[string][]*Workload // sorted by pod name
	workloadsByIP  map[string]*Workload
	servicesByNs   map[string][]*Service // sorted by name
	servicesByHost map[string]*Service
	slicesBySvc    map[string][]*discoveryv1.EndpointSlice // "ns/service"
}

func newIndex(in *Input) *index {
	idx := &index{
		workloadsByPod: make(map[string]*Workload),
		workloadsByNs:  make(map[string][]*Workload),
		workloadsByIP:  make(map[string]*Workload),
		servicesByNs:   make(map[string][]*Service),
		servicesByHost: make(map[string]*Service),
		slicesBySvc:    make(map[string][]*discoveryv1.EndpointSlice),
	}
	for _, w := range in.Workloads {
		key := w.Namespace + "/" + w.PodName
		if _, dup := idx.workloadsByPod[key]; !dup {
			idx.workloadsByPod[key] = w
		}
		idx.workloadsByNs[w.Namespace] = append(idx.workloadsByNs[w.Namespace], w)
		if _, dup := idx.workloadsByIP[w.IP]; w.IP != "" && !dup {
			idx.workloadsByIP[w.IP] = w
		}
	}
	for _, s := range in.Services {
		idx.servicesByNs[s.Namespace] = append(idx.servicesByNs[s.Namespace], s)
		idx.servicesByHost[in.Hostname(s)] = s
	}
	for _, es := range in.EndpointSlices {
		if svc := es.Labels[labelServiceName]; svc != "" {
			key := es.Namespace + "/" + svc
			idx.slicesBySvc[key] = append(idx.slicesBySvc[key], es)
		}
	}
	return idx
}

// idx returns the index, building it for an Input that was not made by Build
// (e.g. a literal in a test).
func (in *Input) idx() *index {
	if in.index != nil {
		return in.index
	}
	return newIndex(in)
}

// Namespace returns the namespace, or nil when no object lives in it.
func (in *Input) Namespace(name string) *Namespace { return in.Namespaces[name] }

// WorkloadByPod returns the workload running as the given pod, or nil.
func (in *Input) WorkloadByPod(namespace, pod string) *Workload {
	return in.idx().workloadsByPod[namespace+"/"+pod]
}

// ServicesSelecting returns the Services of the namespace whose non-empty selector is
// a subset of podLabels, sorted by name.
func (in *Input) ServicesSelecting(namespace string, podLabels map[string]string) []*Service {
	var out []*Service
	for _, s := range in.idx().servicesByNs[namespace] {
		if len(s.Selector) > 0 && subset(s.Selector, podLabels) {
			out = append(out, s)
		}
	}
	return out
}

// Hostname is the Service's cluster-local name, "name.namespace.svc.<DomainSuffix>".
func (in *Input) Hostname(svc *Service) string {
	suffix := in.DomainSuffix
	if suffix == "" {
		suffix = DefaultDomainSuffix
	}
	return svc.Name + "." + svc.Namespace + ".svc." + suffix
}

// ServiceByHost returns the Service with that fully qualified hostname, or nil.
func (in *Input) ServiceByHost(host string) *Service { return in.idx().servicesByHost[host] }

// selected returns the workloads of the Service's namespace its selector matches.
func (in *Input) selected(svc *Service) []*Workload {
	if len(svc.Selector) == 0 {
		return nil
	}
	var out []*Workload
	for _, w := range in.idx().workloadsByNs[svc.Namespace] {
		if subset(svc.Selector, w.PodLabels) {
			out = append(out, w)
		}
	}
	return out
}

// ServiceAccountsOf returns the sorted, unique service accounts of the workloads the
// Service's selector matches, whether or not they have an IP.
func (in *Input) ServiceAccountsOf(svc *Service) []string {
	var out []string
	for _, w := range in.selected(svc) {
		out = append(out, w.ServiceAccount)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Endpoints returns the ready backends of one Service port, sorted by IP then port.
// When EndpointSlices exist for the Service they are used (ready endpoints of the slice
// port with the same name); otherwise the workloads the selector matches that have an
// IP, with the target port resolved through their container ports.
func (in *Input) Endpoints(svc *Service, port ServicePort) []Endpoint {
	idx := in.idx()
	var out []Endpoint
	if esl, ok := idx.slicesBySvc[svc.Namespace+"/"+svc.Name]; ok {
		out = in.sliceEndpoints(esl, port)
	} else {
		out = in.selectorEndpoints(svc, port)
	}
	slices.SortFunc(out, compareEndpoints)
	return slices.CompactFunc(out, func(a, b Endpoint) bool { return compareEndpoints(a, b) == 0 })
}

func (in *Input) selectorEndpoints(svc *Service, port ServicePort) []Endpoint {
	var out []Endpoint
	for _, w := range in.selected(svc) {
		if w.IP == "" {
			continue
		}
		target := port.TargetPort
		if port.TargetPortName != "" {
			p, ok := w.portByName(port.TargetPortName)
			if !ok {
				continue // as Kubernetes: a pod without the named port is no endpoint
			}
			target = p
		}
		out = append(out, Endpoint{Workload: w, IP: w.IP, Port: target})
	}
	return out
}

func (in *Input) sliceEndpoints(esl []*discoveryv1.EndpointSlice, port ServicePort) []Endpoint {
	idx := in.idx()
	var out []Endpoint
	for _, es := range esl {
		for _, sp := range es.Ports {
			if sp.Port == nil || deref(sp.Name) != port.Name {
				continue
			}
			for _, ep := range es.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				var byRef *Workload
				if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
					byRef = idx.workloadsByPod[es.Namespace+"/"+ep.TargetRef.Name]
				}
				for _, addr := range ep.Addresses {
					w := byRef
					if w == nil {
						w = idx.workloadsByIP[addr]
					}
					out = append(out, Endpoint{Workload: w, IP: addr, Port: uint32(*sp.Port)})
				}
			}
		}
	}
	return out
}

func compareEndpoints(a, b Endpoint) int {
	return cmp.Or(compareIPs(a.IP, b.IP), cmp.Compare(a.Port, b.Port))
}

// compareIPs orders addresses numerically when both parse, as strings otherwise.
func compareIPs(a, b string) int {
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	if errA == nil && errB == nil {
		return pa.Compare(pb)
	}
	return cmp.Compare(a, b)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
