package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/psgw/psgw/ops"
)

// apiClient talks to a running gateway's operations API (docs/api.md) for the operator
// commands: status, events, replay, resolve and review.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags are the connection flags every operator command takes.
type clientFlags struct {
	url, token, tokenFile, caFile *string
	insecure                      *bool
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	def := os.Getenv("PSGW_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	return clientFlags{
		url:       fs.String("url", def, "the gateway's `URL` (or PSGW_URL)"),
		token:     fs.String("token", "", "ops bearer `token` (or PSGW_TOKEN; prefer --token-file)"),
		tokenFile: fs.String("token-file", "", "`file` holding the ops bearer token (or PSGW_TOKEN_FILE)"),
		caFile:    fs.String("ca-file", "", "PEM `file` of the CA that signed the gateway's TLS certificate"),
		insecure:  fs.Bool("insecure", false, "do not verify the gateway's TLS certificate (testing only)"),
	}
}

func (f clientFlags) client() (*apiClient, error) {
	tok := *f.token
	if tok == "" {
		tok = os.Getenv("PSGW_TOKEN")
	}
	file := *f.tokenFile
	if file == "" {
		file = os.Getenv("PSGW_TOKEN_FILE")
	}
	if tok == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	u, err := url.Parse(strings.TrimRight(*f.url, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url must be http://host:port or https://host:port, got %q", *f.url)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *f.insecure} //nolint:gosec // opt-in flag for testing
	if *f.caFile != "" {
		pem, err := os.ReadFile(*f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file: no PEM certificates in %s", *f.caFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &apiClient{base: u.String(), token: tok, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}, nil
}

// apiError is an answer other than 2xx, with the gateway's own explanation.
type apiError struct {
	Status  int
	Message string
	// Code and Reason name a refusal for the command to explain (ops.ActionError).
	Code   string
	Reason string
}

func (e *apiError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "the gateway wants a token: give --token-file or set PSGW_TOKEN (" + e.Message + ")"
	case http.StatusForbidden:
		return "refused: " + e.Message
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Message)
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		// Without a token (access control off) an action needs the header; its value is not
		// checked then (docs/api.md, "Safe by default").
		req.Header.Set("X-CSRF-Token", "psgw-cli")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the gateway at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e ops.ActionError
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &apiError{Status: resp.StatusCode, Message: e.Error, Code: e.Code, Reason: e.Reason}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the answer from %s: %w", path, err)
		}
	}
	return nil
}

// incidentURL is the API path of an incident; local ids are free text, so each segment is
// escaped.
func incidentURL(source, localID string) string {
	parts := strings.Split(localID, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/api/v1/incidents/" + url.PathEscape(source) + "/" + strings.Join(parts, "/")
}

// parseInterleaved parses flags that may come before or after positional arguments
// ("psgw replay datix INC-1 --yes"), returning the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// exitFor maps an error to an exit status: 2 for usage, 1 for anything else.
func exitFor(err error, stderr io.Writer, cmd string) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.As(err, new(flagError)) {
		return 2 // the flag package printed it, with the usage
	}
	fmt.Fprintf(stderr, "psgw %s: %v\n", cmd, err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}
