package scenario

import (
	"net"
	"net/url"
)

// IsTCP reports whether the request is a raw TCP exchange rather than HTTP.
func (r *Request) IsTCP() bool { return r.TCP != "" }

// HostHeader is the Host header of an HTTP request: the URL's host with its port when
// the URL names one, as curl sends it. It is empty for TCP requests.
func (r *Request) HostHeader() string {
	u, err := url.Parse(r.URL)
	if err != nil || r.URL == "" {
		return ""
	}
	return u.Host
}

// Path is the request target of an HTTP request: the URL's escaped path (at least
// "/") and its query. It is empty for TCP requests.
func (r *Request) Path() string {
	u, err := url.Parse(r.URL)
	if err != nil || r.URL == "" {
		return ""
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return path
}

// Address is the `host:port` the URL or TCP target names, with the scheme's default
// port (80 for http, 443 for https) when the URL has none. The runner resolves its
// host unless To is set.
func (r *Request) Address() string {
	if r.IsTCP() {
		return r.TCP
	}
	u, err := url.Parse(r.URL)
	if err != nil || r.URL == "" {
		return ""
	}
	if port := u.Port(); port != "" {
		return net.JoinHostPort(u.Hostname(), port)
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
