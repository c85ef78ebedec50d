package xds

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are wardend's Prometheus metrics for xDS serving.
type Metrics struct {
	Registry    *prometheus.Registry
	connected   prometheus.Gauge
	pushes      *prometheus.CounterVec
	pushBytes   *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	convergence *prometheus.HistogramVec
	authFails   prometheus.Counter
	// identityViolations counts streams closed because a request named another node
	// than the one the stream proved, by reason.
	identityViolations *prometheus.CounterVec
	// replacedStreams counts streams closed because a newer stream of the same proxy
	// took over.
	replacedStreams prometheus.Counter
	// ConfigErrors counts the current configuration problems (decoding and translation
	// diagnostics, each once) by object kind and severity; the server feeds it.
	ConfigErrors *prometheus.GaugeVec
	// CertsIssued, WorkloadCertExpiry and RootCertExpiry are fed by the server from certs.
	CertsIssued        prometheus.CounterFunc
	workloadExpirySecs prometheus.GaugeFunc
	rootExpirySecs     prometheus.GaugeFunc
}

// NewMetrics registers Warden's metrics in a fresh registry (plus Go and process collectors).
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_xds_connected_proxies",
			Help: "Proxies with at least one open, authenticated xDS stream."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_xds_pushes_total",
			Help: "xDS responses sent, by type."}, []string{"type"}),
		pushBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_xds_push_bytes_total",
			Help: "Bytes of xDS responses sent, by type."}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_xds_nacks_total",
			Help: "Responses rejected by Envoy (NACK), by type."}, []string{"type"}),
		convergence: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "warden_xds_convergence_seconds",
			Help:    "Time from a configuration change to the proxy's ACK of it, by type.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"type"}),
		authFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_xds_auth_failures_total",
			Help: "xDS streams rejected because the proxy could not prove its identity."}),
		identityViolations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_xds_identity_violations_total",
			Help: "xDS streams closed with PermissionDenied because a request claimed another node or identity, by reason."}, []string{"reason"}),
		replacedStreams: prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_xds_replaced_streams_total",
			Help: "xDS streams closed because a newer stream of the same proxy replaced them."}),
		ConfigErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "warden_config_errors",
			Help: "Configuration problems currently reported (decoding and translation diagnostics), by object kind (a kind Warden reads, Translation, file or other) and severity."}, []string{"kind", "severity"}),
	}
	r.MustRegister(m.connected, m.pushes, m.pushBytes, m.nacks, m.convergence, m.authFails, m.identityViolations, m.replacedStreams, m.ConfigErrors,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// registerCertMetrics adds the metrics that read the certificate store.
func (m *Metrics) registerCertMetrics(issued func() float64, workloadExpiry, rootExpiry func() float64) {
	m.CertsIssued = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "warden_certs_issued_total",
		Help: "Workload certificates minted."}, issued)
	m.workloadExpirySecs = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_cert_workload_earliest_expiry_seconds",
		Help: "Seconds until the earliest workload certificate Warden serves expires."}, workloadExpiry)
	m.rootExpirySecs = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "warden_cert_root_expiry_seconds",
		Help: "Seconds until the mesh root certificate expires."}, rootExpiry)
	m.Registry.MustRegister(m.CertsIssued, m.workloadExpirySecs, m.rootExpirySecs)
}
