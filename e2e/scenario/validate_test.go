package scenario

import (
	"errors"
	"strings"
	"testing"
)

// validSteps is a step list that loads; cases replace parts of it.
const validSteps = `
steps:
  - request: {from: outside, url: "http://a.b/"}
    expect: {status: 200}
`

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		wants []string
	}{
		{"unknown top-level field", "name: x\ndescripton: d\n" + validSteps,
			[]string{"s.yaml: descripton: unknown field", `did you mean "description"?`}},
		{"unknown field in step", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200}\n    timeout: 3s\n",
			[]string{"s.yaml: steps[0].timeout: unknown field"}},
		{"unknown field in request", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, exepct: {}}\n    expect: {status: 200}\n",
			[]string{"s.yaml: steps[0].request.exepct: unknown field"}},
		{"unknown field in expect", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, bodycontains: x}\n",
			[]string{"s.yaml: steps[0].expect.bodycontains: unknown field", `did you mean "bodyContains"?`}},
		{"unknown field in app", "name: x\napps:\n  default/web: {forwrd: {}}\n" + validSteps,
			[]string{`s.yaml: apps["default/web"].forwrd: unknown field`}},
		{"field names are case-sensitive", "name: x\nsteps:\n  - request: {from: outside, URL: http://a.b/}\n    expect: {status: 200}\n",
			[]string{"steps[0].request.URL: unknown field", `did you mean "url"?`}},
		{"wrong type", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: \"200\"}\n",
			[]string{"steps[0].expect.status: want an integer, got a string"}},
		{"number for a string", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, headers: {X-N: 5}}\n    expect: {status: 200}\n",
			[]string{"steps[0].request.headers.X-N: want a string, got number 5"}},
		{"mapping for a list", "name: x\nsteps: {request: {}}\n", []string{"s.yaml: steps: want a list, got a mapping"}},
		{"list for a mapping", "name: x\napps: [a]\n" + validSteps, []string{"s.yaml: apps: want a mapping, got a list"}},
		{"scalar for a struct", "name: x\nsteps:\n  - request: http://a.b/\n", []string{"steps[0].request: want a mapping, got a string"}},
		{"string for a bool", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {connectionError: \"true\"}\n",
			[]string{"steps[0].expect.connectionError: want true or false, got a string"}},
		{"fraction for an integer", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200.5}\n",
			[]string{"steps[0].expect.status: want an integer, got 200.5"}},
		{"headers differing in case", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, headers: {X-A: a, x-a: b}}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.headers.x-a: same header as "X-A"`}},
		{"url without host", "name: x\nsteps:\n  - request: {from: outside, url: \"http:///x\"}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.url: "http:///x": URL has no host`}},
		{"connectionError with body check", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {connectionError: true, bodyContains: x}\n",
			[]string{"steps[0].expect: bodyContains and bodyNotContains need a response"}},
		{"YAML 1.1 boolean for a string", "name: x\napps:\n  a/b: {static: {/x: yes}}\n" + validSteps,
			[]string{`apps["a/b"].static["/x"]: want a string, got true (quote the value)`}},
		// Format 1.1: response header and Envoy counter checks.
		{"response header check on a connection error", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {connectionError: true, responseHeaders: {a: b}}\n",
			[]string{"steps[0].expect: responseHeaders and responseHeadersAbsent need a response"}},
		{"bad response header name", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, responseHeaders: {\"a b\": c}}\n",
			[]string{`steps[0].expect.responseHeaders["a b"]: not a valid header name`}},
		{"header both wanted and absent", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, responseHeaders: {X-A: b}, responseHeadersAbsent: [x-a]}\n",
			[]string{`steps[0].expect.responseHeadersAbsent[0]: "x-a" is also in responseHeaders`}},
		{"absent header twice", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, responseHeadersAbsent: [x-a, X-A]}\n",
			[]string{`steps[0].expect.responseHeadersAbsent[1]: "X-A" is listed twice`}},
		{"empty absent list", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, responseHeadersAbsent: []}\n",
			[]string{`steps[0].expect.responseHeadersAbsent: lists no headers`}},
		{"response headers on a peerCertificate step", "name: x\nsteps:\n  - peerCertificate: {from: a/b, to: c.d:80}\n    expect: {uriSAN: spiffe://x/y, responseHeaders: {a: b}}\n",
			[]string{"steps[0].expect.responseHeaders: not allowed for peerCertificate steps"}},
		{"envoyStats of outside", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, envoyStats: {pod: outside, increase: {a.b: 1}}}\n",
			[]string{"steps[0].expect.envoyStats.pod: outside has no Envoy"}},
		{"envoyStats without counters", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, envoyStats: {pod: a/b}}\n",
			[]string{"steps[0].expect.envoyStats.increase: required"}},
		{"envoyStats negative increase", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, envoyStats: {pod: a/b, increase: {a.b: -1}}}\n",
			[]string{`steps[0].expect.envoyStats.increase["a.b"]: a counter never decreases`}},
		{"envoyStats bad counter name", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, envoyStats: {pod: a/b, increase: {\"a b\": 1}}}\n",
			[]string{`steps[0].expect.envoyStats.increase["a b"]: not an Envoy stat name`}},
		{"envoyStats on a tcp step", "name: x\nsteps:\n  - request: {from: outside, tcp: a.b:80}\n    expect: {echo: true, envoyStats: {pod: a/b, increase: {a: 1}}}\n",
			[]string{"steps[0].expect.envoyStats: not allowed for tcp requests"}},
		{"duplicate key", "name: x\nname: y\n" + validSteps, []string{"s.yaml: invalid YAML", "duplicate"}},
		{"two documents", "name: x\n" + validSteps + "---\nname: y\n" + validSteps, []string{"s.yaml: holds 2 YAML documents"}},
		{"empty file", "# nothing\n", []string{"s.yaml: empty scenario"}},
		{"missing name", validSteps, []string{"s.yaml: name: required"}},
		{"bad name", "name: Seed_Catalog\n" + validSteps, []string{`name: "Seed_Catalog": want kebab-case`}},
		{"double dash name", "name: a--b\n" + validSteps, []string{"want kebab-case"}},
		{"no steps", "name: x\n", []string{"steps: at least one step is required"}},
		{"empty step", "name: x\nsteps:\n  - name: nothing\n", []string{"steps[0]: needs one of request, peerCertificate, apply, delete"}},
		{"two kinds in a step", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    delete: [{kind: Pod, namespace: a, name: b}]\n    expect: {status: 200}\n",
			[]string{"steps[0]: has delete and request; want one per step"}},
		{"both url and tcp", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, tcp: a.b:80}\n    expect: {status: 200}\n",
			[]string{"steps[0].request: has both url and tcp; want one"}},
		{"neither url nor tcp", "name: x\nsteps:\n  - request: {from: outside}\n    expect: {status: 200}\n",
			[]string{"steps[0].request: needs url or tcp"}},
		{"missing from", "name: x\nsteps:\n  - request: {url: http://a.b/}\n    expect: {status: 200}\n",
			[]string{"steps[0].request.from: required"}},
		{"bad from", "name: x\nsteps:\n  - request: {from: sleep, url: http://a.b/}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.from: "sleep": want namespace/name or outside`}},
		{"bad url scheme", "name: x\nsteps:\n  - request: {from: outside, url: \"ftp://a.b/\"}\n    expect: {status: 200}\n",
			[]string{"steps[0].request.url:", "want an http:// or https:// URL"}},
		{"missing expect", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n",
			[]string{"steps[0].expect: required: status or connectionError"}},
		{"expect without status", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {bodyContains: x}\n",
			[]string{"steps[0].expect: needs status or connectionError: true"}},
		{"status and connectionError", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, connectionError: true}\n",
			[]string{"steps[0].expect: has both status and connectionError"}},
		{"status out of range", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 42}\n",
			[]string{"steps[0].expect.status: 42: want an HTTP status"}},
		{"echo on http", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/}\n    expect: {status: 200, echo: true}\n",
			[]string{"steps[0].expect.echo: not allowed for http requests"}},
		{"tcp without echo", "name: x\nsteps:\n  - request: {from: outside, tcp: a.b:9000}\n    expect: {status: 200}\n",
			[]string{"steps[0].expect.status: not allowed for tcp requests", "want exactly one of echo: true and connectionError: true"}},
		{"tcp missing expect", "name: x\nsteps:\n  - request: {from: outside, tcp: a.b:9000}\n",
			[]string{"steps[0].expect: required: echo or connectionError"}},
		{"tcp with method", "name: x\nsteps:\n  - request: {from: outside, tcp: a.b:9000, method: POST}\n    expect: {echo: true}\n",
			[]string{"steps[0].request.method: not allowed in tcp requests"}},
		{"tcp without port", "name: x\nsteps:\n  - request: {from: outside, tcp: a.b}\n    expect: {echo: true}\n",
			[]string{`steps[0].request.tcp: "a.b": want host:port`}},
		{"bad to", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, to: istio-ingressgateway:80}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.to: "istio-ingressgateway:80"`, "want namespace/name:port"}},
		{"to without port", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, to: istio-system/gw}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.to: "istio-system/gw": want namespace/name:port`}},
		{"to with bad port", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, to: \"istio-system/gw:99999\"}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.to:`, "want a number from 1 to 65535"}},
		{"bad method", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, method: \"GET /\"}\n    expect: {status: 200}\n",
			[]string{`steps[0].request.method: "GET /" is not an HTTP method`}},
		{"bad header value", "name: x\nsteps:\n  - request: {from: outside, url: http://a.b/, headers: {X-A: \"a\\nb\"}}\n    expect: {status: 200}\n",
			[]string{"steps[0].request.headers.X-A: value holds a line break"}},
		{"duplicate step names", "name: x\nsteps:\n  - name: step-2\n    apply: [{inline: \"kind: Namespace\\nmetadata: {name: a}\"}]\n  - delete: [{kind: Namespace, name: a}]\n",
			[]string{`steps[1].name: "step-2" is also the name of steps[0]`}},
		{"peerCertificate from outside", "name: x\nsteps:\n  - peerCertificate: {from: outside, to: a.b:80}\n    expect: {chainsToMeshRoot: true}\n",
			[]string{"steps[0].peerCertificate.from: outside has no workload certificate"}},
		{"peerCertificate without to", "name: x\nsteps:\n  - peerCertificate: {from: a/b}\n    expect: {chainsToMeshRoot: true}\n",
			[]string{"steps[0].peerCertificate.to: required"}},
		{"peerCertificate to without port", "name: x\nsteps:\n  - peerCertificate: {from: a/b, to: catalog}\n    expect: {chainsToMeshRoot: true}\n",
			[]string{`steps[0].peerCertificate.to: "catalog": want host:port`}},
		{"peerCertificate empty expect", "name: x\nsteps:\n  - peerCertificate: {from: a/b, to: c.d:80}\n    expect: {}\n",
			[]string{"steps[0].expect: needs uriSAN, chainsToMeshRoot or maxValidity"}},
		{"peerCertificate with status", "name: x\nsteps:\n  - peerCertificate: {from: a/b, to: c.d:80}\n    expect: {status: 200, chainsToMeshRoot: true}\n",
			[]string{"steps[0].expect.status: not allowed for peerCertificate steps"}},
		{"bad maxValidity", "name: x\nsteps:\n  - peerCertificate: {from: a/b, to: c.d:80}\n    expect: {maxValidity: 1d}\n",
			[]string{`steps[0].expect.maxValidity: "1d": want a duration such as 24h`}},
		{"bad uriSAN", "name: x\nsteps:\n  - peerCertificate: {from: a/b, to: c.d:80}\n    expect: {uriSAN: catalog}\n",
			[]string{`steps[0].expect.uriSAN: "catalog": want a URI`}},
		{"expect on apply", "name: x\nsteps:\n  - apply: [{inline: \"kind: Namespace\\nmetadata: {name: a}\"}]\n    expect: {status: 200}\n",
			[]string{"steps[0].expect: not allowed in apply steps"}},
		{"empty apply", "name: x\nsteps:\n  - apply: []\n", []string{"steps[0].apply: lists no manifests"}},
		{"apply with path and inline", "name: x\nsteps:\n  - apply: [{path: a.yaml, inline: \"kind: Namespace\"}]\n",
			[]string{"steps[0].apply[0]: has both path and inline; want one"}},
		{"apply with a missing file", "name: x\nsteps:\n  - apply: [{path: gone.yaml}]\n",
			[]string{"steps[0].apply[0].path: read manifest:", "gone.yaml"}},
		{"apply with bad YAML", "name: x\nsteps:\n  - apply: [{inline: \"- a\\n- b\"}]\n",
			[]string{"steps[0].apply[0].inline:", "want a mapping, got a list"}},
		{"apply with a bad namespace", "name: x\nsteps:\n  - apply: [{inline: \"kind: Pod\", namespace: Default}]\n",
			[]string{`steps[0].apply[0].namespace: "Default"`}},
		{"delete without namespace", "name: x\nsteps:\n  - delete: [{kind: PeerAuthentication, name: default}]\n",
			[]string{"steps[0].delete[0].namespace: required"}},
		{"delete namespace with namespace", "name: x\nsteps:\n  - delete: [{kind: Namespace, namespace: a, name: b}]\n",
			[]string{"steps[0].delete[0].namespace: Namespace is cluster-scoped"}},
		{"delete without kind and name", "name: x\nsteps:\n  - delete: [{namespace: a}]\n",
			[]string{"steps[0].delete[0].kind: required", "steps[0].delete[0].name: required"}},
		{"delete with bad apiVersion", "name: x\nsteps:\n  - delete: [{apiVersion: security.istio.io, kind: PeerAuthentication, namespace: a, name: b}]\n",
			[]string{`steps[0].delete[0].apiVersion: "security.istio.io"`}},
		{"manifest with neither", "name: x\nmanifests: [{namespace: a}]\n" + validSteps,
			[]string{"manifests[0]: needs path or inline"}},
		{"empty manifest", "name: x\nmanifests: [{inline: \"# nothing\"}]\n" + validSteps,
			[]string{"manifests[0].inline: holds no objects"}},
		{"bad app key", "name: x\napps:\n  webapp: {extAuthz: true}\n" + validSteps,
			[]string{`apps.webapp: key "webapp": want namespace/name`}},
		{"bad forward", "name: x\napps:\n  a/b: {forward: {api: \"catalog/items\"}}\n" + validSteps,
			[]string{`apps["a/b"].forward.api: path must start with /`, "want an http:// or https:// URL"}},
		{"extAuthz with static", "name: x\napps:\n  a/b: {extAuthz: true, static: {/x: z}}\n" + validSteps,
			[]string{`apps["a/b"].extAuthz: an ext_authz server answers every path`}},
		{"allowed service account without the gRPC server", "name: x\napps:\n  a/b: {extAuthz: true, extAuthzAllowServiceAccount: sleep}\n" + validSteps,
			[]string{`apps["a/b"].extAuthzAllowServiceAccount: needs extAuthzGrpc: true`}},
		{"tcpEcho port out of range", "name: x\napps:\n  a/b: {tcpEcho: [0, 70000]}\n" + validSteps,
			[]string{`apps["a/b"].tcpEcho[0]: 0: want a port from 1 to 65535`, `apps["a/b"].tcpEcho[1]: 70000: want a port from 1 to 65535`}},
		{"tcpEcho port twice", "name: x\napps:\n  a/b: {tcpEcho: [9000, 9000]}\n" + validSteps,
			[]string{`apps["a/b"].tcpEcho[1]: 9000 is listed twice`}},
		{"tcpEcho not a list of integers", "name: x\napps:\n  a/b: {tcpEcho: [\"9000\"]}\n" + validSteps,
			[]string{`apps["a/b"].tcpEcho[0]: want an integer`}},
		{"allowed service account with a path", "name: x\napps:\n  a/b: {extAuthzGrpc: true, extAuthzAllowServiceAccount: ns/foo/sa/sleep}\n" + validSteps,
			[]string{`apps["a/b"].extAuthzAllowServiceAccount: want a service account name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := loadText(t, tt.text, nil)
			if sc != nil {
				t.Errorf("got a scenario with the error")
			}
			wantErr(t, err, tt.wants...)
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := loadText(t, "name: Bad\nsteps:\n  - request: {url: http://a.b/}\n  - delete: [{kind: Pod, name: p}]\n", nil)
	wantErr(t, err, "name:", "steps[0].request.from: required", "steps[0].expect: required", "steps[1].delete[0].namespace: required")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v holds no *Error", err)
	}
	if e.Field != "name" || !strings.HasSuffix(e.File, "s.yaml") {
		t.Errorf("first *Error = %+v, want field name in s.yaml", e)
	}
}
