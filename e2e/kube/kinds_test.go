package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/wardenmesh/warden/e2e/kubeenv"
)

// kindCase is one watched kind and how to create, update and delete an object of it.
type kindCase struct {
	kind            string
	namespace, name string
	create, update  string // manifests to apply; empty when write is used
	write           func(ctx context.Context, env *kubeenv.Env, version int) error
}

type step struct {
	name string
	do   func(ctx context.Context) error
}

func (k kindCase) steps(env *kubeenv.Env) []step {
	put := func(v int, manifest string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			if k.write != nil {
				return k.write(ctx, env, v)
			}
			return env.Apply(ctx, []byte(manifest))
		}
	}
	return []step{
		{"create", put(1, k.create)},
		{"update", put(2, k.update)},
		{"delete", func(ctx context.Context) error { return env.Delete(ctx, k.kind, k.namespace, k.name) }},
	}
}

func watchedKinds() []kindCase {
	return []kindCase{
		{kind: "Namespace", name: "kinds",
			create: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kinds"}}`,
			update: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kinds","labels":{"istio-injection":"enabled"}}}`},
		{kind: "ServiceAccount", namespace: "demo", name: "kinds",
			create: `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"namespace":"demo","name":"kinds"}}`,
			update: `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"namespace":"demo","name":"kinds","labels":{"v":"2"}}}`},
		{kind: "Service", namespace: "demo", name: "kinds",
			create: service(80), update: service(81)},
		{kind: "Pod", namespace: "demo", name: "kinds-0",
			write: func(ctx context.Context, env *kubeenv.Env, v int) error {
				_, err := env.WritePod(ctx, kubeenv.Pod{Namespace: "demo", Name: "kinds-0", IP: "10.250.0.20", ServiceAccount: "web",
					Labels: map[string]string{"app": "kinds", "v": fmt.Sprint(v)}})
				return err
			}},
		{kind: "EndpointSlice", namespace: "demo", name: "kinds-e2e",
			write: func(ctx context.Context, env *kubeenv.Env, v int) error {
				eps := []kubeenv.Endpoint{{IP: "10.250.0.20", Pod: "kinds-0", Ready: true}}
				if v == 2 {
					eps = append(eps, kubeenv.Endpoint{IP: "10.250.0.10", Pod: "web-0", Ready: true})
				}
				ports := []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}}
				return env.WriteEndpointSlice(ctx, "demo", "kinds", ports, eps)
			}},
		{kind: "ConfigMap", namespace: "istio-system", name: "istio",
			create: meshConfig("rootNamespace: istio-system"),
			update: meshConfig(`rootNamespace: istio-system\nenableAutoMtls: false`)},
		{kind: "PeerAuthentication", namespace: "demo", name: "kinds",
			create: istio("security.istio.io/v1", "PeerAuthentication", `{"selector":{"matchLabels":{"app":"web"}},"mtls":{"mode":"PERMISSIVE"}}`),
			update: istio("security.istio.io/v1", "PeerAuthentication", `{"selector":{"matchLabels":{"app":"web"}},"mtls":{"mode":"DISABLE"}}`)},
		{kind: "RequestAuthentication", namespace: "demo", name: "kinds",
			create: istio("security.istio.io/v1", "RequestAuthentication", `{"selector":{"matchLabels":{"app":"web"}},"jwtRules":[{"issuer":"https://one.example","jwksUri":"https://one.example/jwks"}]}`),
			update: istio("security.istio.io/v1", "RequestAuthentication", `{"selector":{"matchLabels":{"app":"web"}},"jwtRules":[{"issuer":"https://two.example","jwksUri":"https://two.example/jwks"}]}`)},
		{kind: "AuthorizationPolicy", namespace: "demo", name: "kinds",
			create: istio("security.istio.io/v1", "AuthorizationPolicy", `{"selector":{"matchLabels":{"app":"web"}},"action":"ALLOW","rules":[{"from":[{"source":{"principals":["cluster.local/ns/demo/sa/web"]}}]}]}`),
			update: istio("security.istio.io/v1", "AuthorizationPolicy", `{"selector":{"matchLabels":{"app":"web"}},"action":"ALLOW","rules":[{"from":[{"source":{"namespaces":["demo"]}}]}]}`)},
		{kind: "DestinationRule", namespace: "demo", name: "kinds",
			create: istio("networking.istio.io/v1", "DestinationRule", `{"host":"kinds.demo.svc.cluster.local","trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"}}}`),
			update: istio("networking.istio.io/v1", "DestinationRule", `{"host":"kinds.demo.svc.cluster.local","trafficPolicy":{"tls":{"mode":"DISABLE"}}}`)},
		{kind: "Gateway", namespace: "demo", name: "kinds",
			create: istio("networking.istio.io/v1", "Gateway", `{"selector":{"istio":"ingressgateway"},"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["one.example"]}]}`),
			update: istio("networking.istio.io/v1", "Gateway", `{"selector":{"istio":"ingressgateway"},"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["two.example"]}]}`)},
		{kind: "VirtualService", namespace: "demo", name: "kinds",
			create: istio("networking.istio.io/v1", "VirtualService", `{"hosts":["one.example"],"gateways":["kinds"],"http":[{"route":[{"destination":{"host":"kinds"}}]}]}`),
			update: istio("networking.istio.io/v1", "VirtualService", `{"hosts":["two.example"],"gateways":["kinds"],"http":[{"route":[{"destination":{"host":"kinds"}}]}]}`)},
	}
}

func service(port int) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"demo","name":"kinds"},
"spec":{"selector":{"app":"kinds"},"ports":[{"name":"http","port":%d,"targetPort":8080}]}}`, port)
}

func meshConfig(mesh string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"istio-system","name":"istio"},"data":{"mesh":"%s"}}`, mesh)
}

func istio(apiVersion, kind, spec string) string {
	return fmt.Sprintf(`{"apiVersion":%q,"kind":%q,"metadata":{"namespace":"demo","name":"kinds"},"spec":%s}`, apiVersion, kind, spec)
}
