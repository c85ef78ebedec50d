package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// requestResult is what `request` prints.
type requestResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	// Headers are the response headers, names in lower case.
	Headers         map[string][]string `json:"headers,omitempty"`
	Error           string              `json:"error,omitempty"`
	ConnectionError bool                `json:"connectionError"`
}

// tcpResult is what `tcp` prints.
type tcpResult struct {
	Echo  bool   `json:"echo"`
	Got   string `json:"got"`
	Error string `json:"error,omitempty"`
}

// headerFlags collects repeated -header k=v flags in order.
type headerFlags [][2]string

func (h *headerFlags) String() string { return fmt.Sprint(*h) }

func (h *headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("header %q: want name=value", v)
	}
	*h = append(*h, [2]string{strings.TrimSpace(k), val})
	return nil
}

// requestMain sends one HTTP request and prints a requestResult.
func requestMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	url := fs.String("url", "", "URL to request; its host (with port) is the Host header")
	method := fs.String("method", http.MethodGet, "HTTP method")
	body := fs.String("body", "", "request body")
	connect := fs.String("connect", "", "dial this host:port instead of the URL's host")
	timeout := fs.Duration("timeout", 5*time.Second, "overall deadline")
	var headers headerFlags
	fs.Var(&headers, "header", "request header name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("-url is required")
	}
	return printJSON(out, doRequest(ctx, *url, *method, *body, *connect, headers, *timeout))
}

func doRequest(ctx context.Context, url, method, body, connect string, headers headerFlags, timeout time.Duration) requestResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return requestResult{Error: fmt.Sprintf("build request: %v", err)}
	}
	for _, h := range headers {
		if strings.EqualFold(h[0], "host") {
			req.Host = h[1]
			continue
		}
		req.Header.Add(h[0], h[1])
	}
	dialer := &net.Dialer{}
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if connect != "" {
			addr = connect
		}
		return dialer.DialContext(ctx, network, addr)
	}
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return requestResult{Error: err.Error(), ConnectionError: true}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	res := requestResult{Status: resp.StatusCode, Body: string(data), Headers: map[string][]string{}}
	for k, vs := range resp.Header {
		k = strings.ToLower(k)
		res.Headers[k] = append(res.Headers[k], vs...)
	}
	if err != nil {
		res.Error = fmt.Sprintf("read body: %v", err)
	}
	return res
}

// tcpMain sends one line and prints whether it came back.
func tcpMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port to connect to")
	line := fs.String("line", "hello warden", "line to send (without newline)")
	timeout := fs.Duration("timeout", 5*time.Second, "overall deadline")
	serverFirst := fs.Bool("server-first", false, "send nothing until the server's greeting line (warden-banner ...) arrived")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("-addr is required")
	}
	if strings.ContainsAny(*line, "\r\n") {
		return errors.New("-line must be a single line")
	}
	return printJSON(out, doTCP(ctx, *addr, *line, *timeout, *serverFirst))
}

// doTCP sends line and reads it back; serverFirst first waits for the server's greeting.
func doTCP(ctx context.Context, addr, line string, timeout time.Duration, serverFirst bool) tcpResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return tcpResult{Error: err.Error()}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	r := bufio.NewReader(conn)
	if serverFirst {
		greeting, err := r.ReadString('\n')
		if err != nil {
			return tcpResult{Got: greeting, Error: fmt.Sprintf("read greeting: %v", err)}
		}
		if !strings.HasPrefix(greeting, "warden-banner ") {
			return tcpResult{Got: strings.TrimRight(greeting, "\r\n"), Error: "want a greeting warden-banner <port>"}
		}
	}
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return tcpResult{Error: fmt.Sprintf("write: %v", err)}
	}
	got, err := r.ReadString('\n')
	got = strings.TrimRight(got, "\r\n")
	res := tcpResult{Got: got, Echo: err == nil && got == line}
	if err != nil {
		res.Error = fmt.Sprintf("read: %v", err)
	}
	return res
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
