package forwarder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// LFPSE submission API paths (docs/delivery.md, "The national API").
const (
	pathAdverseEvent = "/adverse-event/fhir/AdverseEvent"
	pathMetadata     = "/adverse-event/fhir/metadata"
	headerKey        = "Ocp-Apim-Subscription-Key"
	maxResponseBytes = 4 << 20
)

// Client speaks the national submission API. It retries on its own only when a request could
// not be sent at all (the connection was never made), which can never create a duplicate;
// every other outcome goes back to the caller to classify. Safe for concurrent use.
type Client struct {
	base string
	key  atomic.Pointer[string]
	hc   *retryablehttp.Client
}

// NewClient builds a client for base (https://host, no path) with a per-request timeout.
func NewClient(base, key string, timeout time.Duration) *Client {
	hc := retryablehttp.NewClient()
	hc.Logger = nil
	hc.RetryMax = 2
	hc.RetryWaitMin = 100 * time.Millisecond
	hc.RetryWaitMax = time.Second
	hc.HTTPClient.Timeout = timeout
	// A redirect is not followed: Go would re-send a POST as a GET (or a PUT to wherever it
	// points), and a national endpoint that redirects is a misconfigured base URL. The 3xx is
	// classified like any other answer, so the operator sees it.
	hc.HTTPClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return err != nil && notSent(err), nil
	}
	hc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c := &Client{base: strings.TrimRight(base, "/"), hc: hc}
	c.SetKey(key)
	return c
}

// SetKey replaces the subscription key, e.g. after an operator rotated it.
func (c *Client) SetKey(key string) { c.key.Store(&key) }

// notSent reports whether err proves the request never left: a failed dial or DNS look-up.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// Response is a raw answer from the national service, or the transport error that stood in
// for one.
type Response struct {
	Status     int
	Body       []byte
	RetryAfter time.Duration
	// Err is the transport error when no answer arrived.
	Err error
	// Sent is true when the whole request was written, so the service may have acted on it
	// even though no answer arrived.
	Sent bool
	// Location is the answer's Location header: where a FHIR server that answers a create
	// with no body (return=minimal) says the new resource is.
	Location string
}

// Send POSTs (nationalID empty) or PUTs (to nationalID) the payload.
func (c *Client) Send(ctx context.Context, nationalID string, payload []byte) Response {
	method, url := http.MethodPost, c.base+pathAdverseEvent
	if nationalID != "" {
		method, url = http.MethodPut, c.base+pathAdverseEvent+"/"+neturl.PathEscape(nationalID)
	}
	return c.do(ctx, method, url, payload)
}

// Probe fetches the CapabilityStatement: a cheap call to learn whether the key works.
func (c *Client) Probe(ctx context.Context) Response {
	return c.do(ctx, http.MethodGet, c.base+pathMetadata, nil)
}

func (c *Client) do(ctx context.Context, method, url string, payload []byte) Response {
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			sent.Store(true)
		}
	}}
	ctx = httptrace.WithClientTrace(ctx, trace)
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return Response{Err: fmt.Errorf("building request: %w", err)}
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(headerKey, *c.key.Load())
	req.Header.Set("User-Agent", "psgw")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Response{Err: err, Sent: sent.Load()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	out := Response{Status: resp.StatusCode, Body: b, Sent: true, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Location: resp.Header.Get("Location")}
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// A success whose body was cut off: the service acted, but we do not know the id.
		out.Err = fmt.Errorf("reading response body: %w", err)
	}
	return out
}
