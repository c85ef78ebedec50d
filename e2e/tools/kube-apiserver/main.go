// Command kube-apiserver is the stock Kubernetes API server, built from the
// k8s.io/kubernetes module so the kube-mode tests run against a real one.
// hack/deps.sh builds it into .cache/bin; nothing here is shipped.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
