package xds

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wardenmesh/warden/translate"
	"github.com/wardenmesh/warden/watch"
)

// SecretProvider hands out key material for a proven identity. It must only ever
// mint for the identity it is given (which comes from the proxy's token).
type SecretProvider interface {
	WorkloadSecret(id Identity) (WorkloadSecret, error)
}

// Options configure a Server.
type Options struct {
	Log     *slog.Logger
	Auth    Authenticator
	Secrets SecretProvider
	Replica string // this wardend's name in status output
	Metrics *Metrics
	Now     func() time.Time
	// ServerCert returns wardend's current serving certificate (rotated by the caller).
	ServerCert func() (*tls.Certificate, error)
	// OnProblems, when set, is called with every configuration problem (see Problems)
	// each time the list changes; Kubernetes mode records them as Events.
	OnProblems func([]ConfigProblem)
	// AccessLog caps the window of access log entries proxies send (defaults when 0).
	AccessLogEntries, AccessLogBytes int
	// NoAccessLogs turns off the access loggers to wardend in every proxy's configuration.
	NoAccessLogs bool
	// AccessLogRate caps the access log entries wardend reads per second over all
	// streams (DefaultAccessLogRate when 0, no cap when negative), so a flood of
	// entries cannot take the CPU that xDS pushes need: a stream over the cap is read
	// later, gRPC flow control holds the proxy's logger back, and Envoy drops what its
	// buffer cannot hold (its stat access_logs.grpc_access_log.logs_dropped).
	AccessLogRate float64
}

// proxy is one connected Envoy, keyed by node id.
type proxy struct {
	ident   Identity
	node    nodeInfo
	streams map[int64]bool
	// versions last set in the cache, to skip pushes that change nothing.
	versions map[string]string
	// build serialises this proxy's snapshot builds, so its snapshots are set in input order.
	build   sync.Mutex
	lastErr string
	// failed is set while the last build of this proxy failed (guarded by build); such a
	// proxy is rebuilt by every push whatever its scope.
	failed bool
	// diags are the diagnostics of this proxy's last translation.
	diags []watch.Diagnostic
	// connectedAt is when the proxy's first stream of this connection bound (kept
	// across a replaced stream): from then on its pod's requests go through it.
	connectedAt time.Time
}

// Server is Warden's xDS server.
type Server struct {
	opts    Options
	log     *slog.Logger
	cache   cache.SnapshotCache
	tracker *Tracker

	mu     sync.Mutex
	input  *watch.Input
	index  *translate.Index // derived from input once, shared by every proxy's translation
	rcache *resourceCache   // hashes and SDS references of the index's resources
	gen    uint64           // bumped by every SetInput and Refresh
	// pending is the scope of the changes not yet pushed: the union of every SetInput's
	// translate.ChangeScope (All after Refresh) since pushAll last took it.
	pending translate.PushScope
	// rcReuse counts the scoped inputs that kept rcache (bounded by maxRCacheReuse).
	rcReuse int
	// setInput serialises SetInput, which derives each index from the previous one.
	setInput sync.Mutex
	// translated counts proxy translations, for tests and benchmarks.
	translated atomic.Int64
	proxies    map[string]*proxy        // by node id
	streams    map[int64]*streamBinding // by stream id

	dirty chan struct{}
	// logLimit bounds the log lines a proxy or a remote address can cause.
	logLimit *RateLog
	// operators, when set, may read the whole fleet over CSDS.
	operators atomic.Pointer[OperatorAuth]
	problems  problemReporter
	// window holds the access log entries proxies send (als.go).
	window *AccessWindow
	// alsLimit paces the reading of access log entries (Options.AccessLogRate).
	alsLimit *rate.Limiter
}

type streamBinding struct {
	ident  Identity
	nodeID string     // set once the first request has been checked
	node   *core.Node // the last node message checked, to skip re-checking the same one
	delta  bool
	remote string
	// cancel closes the stream (set by the stream guard); replaced is set, under
	// Server.mu, once a newer stream of the same proxy took over.
	cancel   context.CancelCauseFunc
	replaced bool
}

// New returns a Server that serves nothing until SetInput is called once.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	s := &Server{opts: opts, log: opts.Log, proxies: map[string]*proxy{}, streams: map[int64]*streamBinding{},
		dirty: make(chan struct{}, 1), logLimit: NewRateLog(RateLogOptions{Every: logEvery, Burst: logBurst, MaxKeys: 4096})}
	s.tracker = NewTracker(opts.Replica, opts.Now, opts.Metrics)
	s.window = NewAccessWindow(opts.AccessLogEntries, opts.AccessLogBytes, opts.Metrics.Registry)
	s.alsLimit = newALSLimiter(opts.AccessLogRate)
	s.cache = &parkingCache{SnapshotCache: cache.NewSnapshotCache(true, cache.IDHash{}, nil), tracker: s.tracker}
	return s
}

// Tracker exposes sync status.
func (s *Server) Tracker() *Tracker { return s.tracker }

// Input returns the input currently served (nil before the first).
func (s *Server) Input() *watch.Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.input
}

// maxRCacheReuse bounds how many scoped inputs in a row share one resourceCache, which
// keeps (and so holds alive) the resources of every build it served.
const maxRCacheReuse = 64

// SetInput installs a new mesh snapshot; affected proxies are re-pushed asynchronously.
// Only the proxies the change can affect (translate.ChangeScope) are re-translated; the
// index and the resource cache are derived from the previous ones when the change is
// scoped, so what did not change is neither rebuilt nor re-hashed.
func (s *Server) SetInput(in *watch.Input) {
	s.setInput.Lock()
	defer s.setInput.Unlock()
	s.mu.Lock()
	prevIn, prevX, rc := s.input, s.index, s.rcache
	s.mu.Unlock()
	sc := translate.ChangeScope(prevIn, in)
	x := translate.NewIndexFrom(prevX, in, sc)
	s.mu.Lock()
	if sc.All || rc == nil || s.rcReuse >= maxRCacheReuse {
		rc, s.rcReuse = newResourceCache(), 0
	} else {
		s.rcReuse++
	}
	s.input, s.index, s.rcache = in, x, rc
	s.pending = s.pending.Union(sc)
	s.gen++
	// The tracker learns the generation before the input is visible outside (debug
	// inputz), so nobody sees the new input with proxies still SYNCED on the old one.
	s.tracker.NewInput(s.gen)
	s.mu.Unlock()
	s.reportProblems()
	s.markDirty()
}

// Refresh re-evaluates every proxy (e.g. after certificates rotated).
func (s *Server) Refresh() {
	s.mu.Lock()
	s.pending = translate.AllProxies("refresh")
	s.gen++
	// The tracker learns the generation before the input is visible outside (debug
	// inputz), so nobody sees the new input with proxies still SYNCED on the old one.
	s.tracker.NewInput(s.gen)
	s.mu.Unlock()
	s.markDirty()
}

func (s *Server) markDirty() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// Serve runs the gRPC server on lis until ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	xs := serverv3.NewServer(ctx, s.cache, s.callbacks())
	var opts []grpc.ServerOption
	if s.opts.ServerCert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.opts.ServerCert()
			},
		})))
	}
	opts = append(opts,
		// One ADS stream per proxy; a few more allow a reconnect to overlap the old one.
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxHeaderListSize(maxHeaderListSize),
		// Each connection keeps its read buffer for its life; what proxies send is small
		// (requests, ACKs, access log batches), so 8 KiB instead of gRPC's 32 KiB: 24 MiB
		// less at 1,000 proxies.
		grpc.ReadBufferSize(readBufferSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	gs := grpc.NewServer(opts...)
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, streamGuard{xs})
	registerCSDS(gs, s)
	alsv3.RegisterAccessLogServiceServer(gs, alsService{s: s})

	go s.pushLoop(ctx)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case <-ctx.Done():
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
		return nil
	case err := <-errc:
		return err
	}
}

// pushLoop rebuilds snapshots when the input changed, coalescing bursts.
func (s *Server) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
			s.pushAll(ctx)
		}
	}
}

// pushAll rebuilds the proxies the pending changes can affect, and the ones whose last
// build failed or that have none yet; every other proxy's configuration is what a
// rebuild would give, so it is only marked evaluated at the current generation.
func (s *Server) pushAll(ctx context.Context) {
	s.mu.Lock()
	sc, gen := s.pending, s.gen
	s.pending = translate.PushScope{}
	ids := make([]string, 0, len(s.proxies))
	var skipped []string
	for id, p := range s.proxies {
		if sc.Affects(p.ident.Namespace) || p.versions == nil {
			ids = append(ids, id)
		} else {
			skipped = append(skipped, id)
		}
	}
	s.mu.Unlock()
	sort.Strings(ids)
	for _, id := range skipped {
		if !s.rebuildIfFailed(id, gen, sc) {
			ids = append(ids, id)
		}
	}
	start := s.opts.Now()
	var pushed atomic.Int64
	work := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				changed, err := s.rebuild(id)
				if err != nil {
					s.log.Error("proxy configuration not updated; it keeps its last good configuration", "proxy", id, "err", err)
					continue
				}
				if changed {
					pushed.Add(1)
				}
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- id
	}
	close(work)
	wg.Wait()
	s.reportProblems()
	if len(ids) > 0 {
		s.log.Info("configuration evaluated", "proxies", len(ids)+len(skipped), "translated", len(ids), "pushed", pushed.Load(),
			"scope", scopeForLog(sc), "took", s.opts.Now().Sub(start).Round(time.Microsecond))
	}
}

// rebuildIfFailed marks an unaffected proxy evaluated at gen (its diagnostics naming
// the moved objects' new Source) and reports true, or reports false when its last
// build failed (it must be rebuilt).
func (s *Server) rebuildIfFailed(id string, gen uint64, sc translate.PushScope) bool {
	s.mu.Lock()
	p := s.proxies[id]
	s.mu.Unlock()
	if p == nil {
		return true
	}
	p.build.Lock()
	defer p.build.Unlock()
	if p.failed {
		return false
	}
	if len(sc.Moved) > 0 {
		s.mu.Lock()
		p.diags = sc.MovedDiagnostics(p.diags)
		s.mu.Unlock()
	}
	s.tracker.Evaluated(id, gen)
	return true
}

func scopeForLog(sc translate.PushScope) string {
	if sc.All {
		return "all (" + sc.Reason + ")"
	}
	return fmt.Sprint(sc.SortedNamespaces())
}

// rebuild translates and sets one proxy's snapshot; it reports whether anything changed.
func (s *Server) rebuild(id string) (bool, error) {
	s.mu.Lock()
	p := s.proxies[id]
	s.mu.Unlock()
	if p == nil {
		return false, nil
	}
	p.build.Lock()
	defer p.build.Unlock()
	s.mu.Lock()
	x, gen, rc := s.index, s.gen, s.rcache
	s.mu.Unlock()
	if x == nil {
		return false, nil
	}
	// Labels and IP come from what the credential's signer vouched for (and translate
	// prefers the Pod object); never from the node message.
	tp := translate.Proxy{ID: id, Namespace: p.ident.Namespace, Pod: p.ident.Pod, ServiceAccount: p.ident.ServiceAccount,
		Labels: p.ident.Labels, Gateway: p.node.Gateway}
	if len(p.ident.IPs) > 0 {
		tp.IP = p.ident.IPs[0]
	}
	tp.AccessLog = s.accessLogSink(p.node)
	s.translated.Add(1)
	p.failed = true // until this build is set
	out := x.Translate(tp)
	s.mu.Lock()
	if cur := s.proxies[id]; cur == p {
		p.diags = out.Diagnostics
	}
	s.mu.Unlock()
	sec, err := s.opts.Secrets.WorkloadSecret(p.ident)
	if err != nil {
		return false, fmt.Errorf("workload certificate for %s/%s: %w", p.ident.Namespace, p.ident.ServiceAccount, err)
	}
	if provenGateway(x.Input(), p.ident, tp.Gateway) {
		sec.Credentials = gatewayCredentials(x.Input(), p.ident.Namespace, out.SecretNames)
	} else {
		sec.Credentials = clientCredentials(x.Input(), p.ident.Namespace, out.SecretNames, out.GatewayCredentialNames)
	}
	b, err := buildSnapshot(out, sec, rc)
	if err != nil {
		return false, err
	}
	if len(decidePush(p.versions, b.versions)) == 0 {
		p.failed = false
		s.tracker.Evaluated(id, gen)
		return false, nil
	}
	// Record the intent before the cache can answer, so an ACK is never seen before its intent.
	s.tracker.Intended(id, b.versions, b.counts)
	if err := s.cache.SetSnapshot(context.Background(), id, b.snap); err != nil {
		return false, fmt.Errorf("set snapshot: %w", err)
	}
	s.mu.Lock()
	if cur := s.proxies[id]; cur == p {
		p.versions = b.versions
	}
	s.mu.Unlock()
	p.failed = false
	s.tracker.Evaluated(id, gen)
	return true, nil
}

// decidePush is the push decision for one proxy: the xDS types (short names, sorted)
// whose version in next differs from what the proxy was last given (prev, nil before
// its first snapshot). Nothing is pushed when it is empty: versions are content
// hashes, so re-translating an unchanged configuration changes none, and a rotated
// certificate changes only SDS.
func decidePush(prev, next map[string]string) []string {
	var changed []string
	for typ, v := range next {
		if pv, ok := prev[typ]; !ok || pv != v {
			changed = append(changed, shortName(typ))
		}
	}
	for typ := range prev {
		if _, ok := next[typ]; !ok {
			changed = append(changed, shortName(typ))
		}
	}
	sort.Strings(changed)
	return changed
}

// ServedResources returns the resources currently set for a proxy, for debugging.
func (s *Server) ServedResources(id string) (cache.ResourceSnapshot, error) {
	return s.cache.GetSnapshot(id)
}

// --- stream callbacks ---

// streamKey makes stream ids unique across protocols: go-control-plane numbers SotW
// and delta streams with separate counters, so both start at 1.
func streamKey(sid int64, delta bool) int64 {
	if delta {
		return -sid
	}
	return sid
}

func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(ctx context.Context, sid int64, _ string) error {
			return s.open(ctx, streamKey(sid, false), false)
		},
		DeltaStreamOpenFunc: func(ctx context.Context, sid int64, _ string) error {
			return s.open(ctx, streamKey(sid, true), true)
		},
		StreamClosedFunc:      func(sid int64, _ *core.Node) { s.closed(streamKey(sid, false)) },
		DeltaStreamClosedFunc: func(sid int64, _ *core.Node) { s.closed(streamKey(sid, true)) },
		StreamRequestFunc: func(sid int64, req *discovery.DiscoveryRequest) error {
			return s.request(streamKey(sid, false), req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), req.GetErrorDetail().GetMessage())
		},
		StreamDeltaRequestFunc: func(sid int64, req *discovery.DeltaDiscoveryRequest) error {
			key := streamKey(sid, true)
			if err := s.request(key, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), "", req.GetErrorDetail().GetMessage()); err != nil {
				return err
			}
			if req.GetResponseNonce() == "" && len(req.GetInitialResourceVersions()) > 0 {
				s.deltaResumed(key, req.GetTypeUrl(), req.GetInitialResourceVersions())
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, sid int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			s.sent(streamKey(sid, false), resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), respSize(resp.GetResources()))
		},
		StreamDeltaResponseFunc: func(sid int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
			size := 0
			for _, r := range resp.GetResources() {
				size += len(r.GetResource().GetValue())
			}
			s.sent(streamKey(sid, true), resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce(), size)
		},
	}
}

// open authenticates a new stream: nothing is served on it before its credential is
// verified, and the identity it proves is the only one it is ever served.
func (s *Server) open(ctx context.Context, sid int64, delta bool) error {
	remote := remoteAddr(ctx)
	tok, err := bearerToken(ctx)
	if err == nil {
		var id Identity
		id, err = s.opts.Auth.Authenticate(ctx, tok)
		if err == nil {
			cancel, _ := ctx.Value(streamCancelKey{}).(context.CancelCauseFunc)
			s.mu.Lock()
			s.streams[sid] = &streamBinding{ident: id, delta: delta, cancel: cancel, remote: remote}
			s.mu.Unlock()
			return nil
		}
	}
	s.opts.Metrics.authFails.Inc()
	if ok, dropped := s.logLimit.Allow("auth " + hostOf(remote)); ok {
		s.log.Warn("xDS stream rejected: proxy could not prove its identity", "stream", sid, "remote", remote,
			"err", Truncate(err.Error(), maxLoggedError), "suppressedSinceLast", dropped)
	}
	return status.Error(codes.Unauthenticated, err.Error())
}

// request holds every request of a stream to the identity the stream proved: the
// first one binds the stream to its node, and any later one that names another node,
// or node metadata contradicting the identity, closes the stream.
func (s *Server) request(sid int64, node *core.Node, typeURL, nonce, version, errMsg string) error {
	s.mu.Lock()
	b := s.streams[sid]
	var replaced bool
	if b != nil {
		replaced = b.replaced
	}
	s.mu.Unlock()
	if b == nil {
		return status.Error(codes.Unauthenticated, "stream not authenticated")
	}
	if replaced {
		return status.Error(codes.Aborted, "a newer xDS stream of this proxy replaced this one")
	}
	if b.nodeID == "" {
		if err := s.bind(sid, b, node); err != nil {
			return err
		}
	} else if node != nil && node != b.node {
		if err := s.hold(sid, b, node); err != nil {
			return err
		}
	}
	if s.tracker.Request(b.nodeID, typeURL, nonce, version, errMsg) {
		if ok, dropped := s.logLimit.Allow("nack " + b.nodeID); ok {
			s.log.Warn("Envoy rejected configuration (NACK); it keeps its previous configuration and Warden will not resend until the input changes",
				"proxy", b.nodeID, "type", shortName(typeURL), "error", Truncate(errMsg, maxLoggedError), "suppressedSinceLast", dropped)
		}
	}
	return nil
}

// maxLoggedError bounds the bytes of a proxy-supplied message that reach the log.
const maxLoggedError = 1024

// hold checks a later request's node against the stream's bound node and identity.
func (s *Server) hold(sid int64, b *streamBinding, node *core.Node) error {
	ni := parseNode(node)
	err := checkNode(b.ident, ni)
	reason := "metadata"
	if ni.ID != b.nodeID {
		reason = "node-id"
		err = fmt.Errorf("request names node %q but this stream proved %s and is bound to node %q", ni.ID, b.ident, b.nodeID)
	}
	if err == nil {
		b.node = node
		return nil
	}
	return s.violation(sid, b, reason, ni.ID, err)
}

// violation closes a stream that claimed what it did not prove, logging both identities once.
func (s *Server) violation(sid int64, b *streamBinding, reason, claimed string, err error) error {
	s.opts.Metrics.identityViolations.WithLabelValues(reason).Inc()
	if ok, dropped := s.logLimit.Allow("violation " + hostOf(b.remote)); ok {
		s.log.Error("xDS stream closed: a request claimed another identity than the stream proved",
			"stream", sid, "remote", b.remote, "proven", b.ident.String(), "boundNode", b.nodeID,
			"claimedNode", Truncate(claimed, 256), "reason", reason, "err", Truncate(err.Error(), maxLoggedError),
			"suppressedSinceLast", dropped)
	}
	return status.Error(codes.PermissionDenied, Truncate(err.Error(), maxLoggedError))
}

// bind checks a stream's node against its proven identity and builds its first
// snapshot. A proxy has one stream: a newer one (a reconnecting Envoy) replaces the
// older ones, which are closed; node data is never merged across streams.
func (s *Server) bind(sid int64, b *streamBinding, node *core.Node) error {
	if node == nil {
		return status.Error(codes.InvalidArgument, "first request carries no node")
	}
	ni := parseNode(node)
	if err := checkNode(b.ident, ni); err != nil {
		reason := "metadata"
		if ni.ID != b.ident.NodeID() {
			reason = "node-id"
		}
		return s.violation(sid, b, reason, ni.ID, err)
	}
	id := ni.ID
	var old []*streamBinding
	s.mu.Lock()
	b.nodeID, b.node = id, node
	p := s.proxies[id]
	if p == nil {
		p = &proxy{streams: map[int64]bool{}}
		s.proxies[id] = p
	}
	for osid := range p.streams {
		if ob := s.streams[osid]; ob != nil && osid != sid {
			ob.replaced = true
			old = append(old, ob)
		}
	}
	p.streams = map[int64]bool{sid: true}
	p.ident, p.node = b.ident, ni
	if p.connectedAt.IsZero() {
		p.connectedAt = s.opts.Now()
	}
	s.mu.Unlock()
	for _, ob := range old {
		s.opts.Metrics.replacedStreams.Inc()
		s.log.Warn("proxy opened a new xDS stream; the older stream is closed (one stream per proxy)",
			"proxy", id, "newRemote", b.remote, "oldRemote", ob.remote)
		if ob.cancel != nil {
			ob.cancel(errReplaced)
		}
	}
	s.tracker.Connected(sid, id, b.ident, ni.EnvoyVersion)
	s.log.Info("proxy connected", "proxy", id, "serviceAccount", b.ident.ServiceAccount, "envoy", ni.EnvoyVersion,
		"delta", b.delta, "remote", b.remote)
	if _, err := s.rebuild(id); err != nil {
		s.log.Error("cannot build configuration for proxy", "proxy", id, "err", err)
		return status.Error(codes.Internal, "cannot build configuration: "+err.Error())
	}
	return nil
}

// deltaResumed handles a reconnecting delta client that already holds resources (after
// a wardend restart, say): when what it holds is exactly what it is intended to have,
// go-control-plane sends nothing, and the type is in sync without a push.
func (s *Server) deltaResumed(sid int64, typeURL string, held map[string]string) {
	s.mu.Lock()
	b := s.streams[sid]
	s.mu.Unlock()
	if b == nil || b.nodeID == "" {
		return
	}
	snap, err := s.cache.GetSnapshot(b.nodeID)
	if err != nil {
		return
	}
	want := snap.GetVersionMap(typeURL)
	if len(want) != len(held) {
		return
	}
	for name, v := range want {
		if held[name] != v {
			return
		}
	}
	s.tracker.Resumed(b.nodeID, typeURL, snap.GetVersion(typeURL))
}

func (s *Server) sent(sid int64, typeURL, version, nonce string, size int) {
	s.mu.Lock()
	b := s.streams[sid]
	ok := b != nil && b.nodeID != "" && !b.replaced
	s.mu.Unlock()
	if !ok {
		return
	}
	s.tracker.Sent(b.nodeID, typeURL, version, nonce, size)
}

func (s *Server) closed(sid int64) {
	s.mu.Lock()
	b := s.streams[sid]
	delete(s.streams, sid)
	var last bool
	if b != nil && b.nodeID != "" {
		if p := s.proxies[b.nodeID]; p != nil && p.streams[sid] {
			delete(p.streams, sid)
			if len(p.streams) == 0 {
				delete(s.proxies, b.nodeID)
				last = true
			}
		}
	}
	s.mu.Unlock()
	if b == nil || b.nodeID == "" {
		return
	}
	s.tracker.Disconnected(sid, b.nodeID)
	if last {
		s.cache.ClearSnapshot(b.nodeID)
		s.log.Info("proxy disconnected", "proxy", b.nodeID)
	}
}

func respSize(rs []*anypb.Any) int {
	n := 0
	for _, r := range rs {
		n += len(r.GetValue())
	}
	return n
}
