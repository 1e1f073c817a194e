package sim

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"
)

// rollFault decides the fault, if any, for a request that passed the key check.
func (s *Simulator) rollFault() (kind string, status int, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f = s.faults
	if s.now().Before(f.StormUntil) {
		return FaultStorm, http.StatusTooManyRequests, f
	}
	if f.ErrorRate <= 0 && f.RateLimitRate <= 0 && f.ResetRate <= 0 {
		return "", 0, f
	}
	x := s.dice.Float64()
	switch {
	case x < f.ErrorRate:
		codes := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		return FaultError, codes[s.dice.IntN(len(codes))], f
	case x < f.ErrorRate+f.RateLimitRate:
		return FaultRateLimit, http.StatusTooManyRequests, f
	case x < f.ErrorRate+f.RateLimitRate+f.ResetRate:
		return FaultReset, 0, f
	}
	return "", 0, f
}

// rollAfterStoreLocked picks the fault, if any, for a write just stored: at most one of
// LostResponseRate and the stored-then faults. Caller holds s.mu.
func (s *Simulator) rollAfterStoreLocked() (kind string, f Faults) {
	f = s.faults
	rates := f.afterStoreRates()
	some := false
	for _, r := range rates {
		some = some || r.rate > 0
	}
	if !some {
		return "", f
	}
	x, acc := s.dice.Float64(), 0.0
	for _, r := range rates {
		if acc += r.rate; x < acc {
			return r.kind, f
		}
	}
	return "", f
}

// answerStored answers a write that was stored, with the fault kind rolled for it ("" for
// none): status and body are the answer a well-behaved service gives.
func (s *Simulator) answerStored(w *statusWriter, r *http.Request, kind string, f Faults, status int, body []byte) {
	if kind == "" {
		writeBody(w, status, fhirJSON, body)
		return
	}
	s.count(func(st *Stats) {
		st.Faults[kind]++
		if kind == FaultLostResponse {
			st.LostResponses++
		}
	})
	w.fault = kind
	ev := s.log.Info().Str("fault", kind).Str("id", w.id)
	switch kind {
	case FaultLostResponse:
		ev.Msg("injecting fault")
		dropConnection(w, false)
	case FaultStoreThenReset:
		ev.Msg("injecting fault")
		dropConnection(w, true)
	case FaultStoreThenError:
		code := f.StoreThenStatus
		if code == 0 {
			code = http.StatusGatewayTimeout
		}
		ev.Int("status", code).Msg("injecting fault")
		w.Header().Del("Location")
		w.Header().Del("ETag")
		writeServerError(w, code)
	case FaultStoreThenSlow:
		d := f.StoreThenSlowFor
		if d <= 0 {
			d = DefaultStoreThenSlowFor
		}
		ev.Dur("for", d).Msg("injecting fault")
		if !wait(r.Context(), d) {
			w.dropped = true // the client gave up before the answer
			return
		}
		writeBody(w, status, fhirJSON, body)
	case FaultTruncated:
		ev.Msg("injecting fault")
		w.Header().Set("Content-Type", fhirJSON)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w.ResponseWriter).Flush()
		dropConnection(w, false)
	}
}

// wait sleeps for d and reports whether the client is still there.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// injectFault answers a request with the fault kind picked for it.
func (s *Simulator) injectFault(w *statusWriter, kind string, status int, f Faults) {
	s.count(func(st *Stats) { st.Faults[kind]++ })
	w.fault = kind
	ev := s.log.Info().Str("fault", kind)
	if status != 0 {
		ev = ev.Int("status", status)
	}
	if w.id != "" {
		ev = ev.Str("id", w.id)
	}
	ev.Msg("injecting fault")
	switch {
	case status == 0: // a reset, or an outage in DownModeReset
		dropConnection(w, true)
	case status == http.StatusTooManyRequests:
		n := f.retryAfterSeconds()
		w.Header().Set("Retry-After", strconv.Itoa(n))
		writeAPIM(w, status, "Rate limit is exceeded. Try again in "+strconv.Itoa(n)+" seconds.")
	default:
		writeServerError(w, status)
	}
}

// writeServerError answers a 5xx in the shape its source would use: LFPSE itself failing
// answers in FHIR (500); the gateway in front answers in its own shapes.
func writeServerError(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusInternalServerError:
		writeOutcome(w, status, Issue{Code: "exception", Rule: "sim-internal-error", Message: "simulated internal server error"})
	case http.StatusBadGateway:
		// A bare text body, because the forwarder's decoder must cope with one too.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("Bad Gateway"))
	default:
		writeAPIM(w, status, http.StatusText(status))
	}
}

// dropConnection takes the connection from net/http and closes it without an answer. With
// reset, SO_LINGER 0 makes the close send RST, so the client sees "connection reset by
// peer" rather than a clean EOF. Where hijacking is impossible (HTTP/2, a recorder), it
// aborts the handler the way net/http defines, which resets the stream instead.
func dropConnection(w *statusWriter, reset bool) {
	w.dropped = true
	conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS: reset the TCP beneath
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
