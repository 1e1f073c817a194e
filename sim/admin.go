package sim

import (
	"encoding/json"
	"io"
	"net/http"
)

// serveAdmin serves the /_sim/ endpoints. They need no key and suffer no faults: they are
// how a test or an operator drives and inspects the simulator, not part of the national API.
func (s *Simulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_sim/events":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, "application/json", s.Events())
		}
	case "/_sim/requests":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, "application/json", s.Requests())
		}
	case "/_sim/stats":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, "application/json", s.Stats())
		}
	case "/_sim/faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, "application/json", s.Faults())
		case http.MethodPut:
			s.putFaults(w, r)
		default:
			allow(w, r, http.MethodGet, http.MethodPut)
		}
	case "/_sim/keys":
		if allow(w, r, http.MethodPut) {
			s.putKeys(w, r)
		}
	case "/_sim/reset":
		if allow(w, r, http.MethodPost) {
			s.Reset()
			s.log.Info().Msg("simulator reset")
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		adminError(w, http.StatusNotFound, "no such simulator endpoint")
	}
}

func (s *Simulator) putFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeAdmin(w, r, &f); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := f.Validate(); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetFaults(f)
	f = s.Faults()
	s.log.Info().Float64("error_rate", f.ErrorRate).Float64("rate_limit_rate", f.RateLimitRate).
		Dur("latency", f.Latency).Float64("reset_rate", f.ResetRate).
		Float64("lost_response_rate", f.LostResponseRate).Float64("store_then_error_rate", f.StoreThenErrorRate).
		Int("store_then_status", f.StoreThenStatus).Float64("store_then_slow_rate", f.StoreThenSlowRate).
		Dur("store_then_slow_for", f.StoreThenSlowFor).Float64("store_then_reset_rate", f.StoreThenResetRate).
		Float64("truncate_rate", f.TruncateRate).Bool("down", f.Down).
		Time("storm_until", f.StormUntil).Msg("faults changed")
	writeJSON(w, http.StatusOK, "application/json", f)
}

func (s *Simulator) putKeys(w http.ResponseWriter, r *http.Request) {
	var keys []string
	if err := decodeAdmin(w, r, &keys); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkKeys(keys); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetKeys(keys...)
	s.log.Info().Int("keys", len(keys)).Msg("subscription keys replaced") // never the keys themselves
	w.WriteHeader(http.StatusNoContent)
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// allow reports whether r uses one of the methods, answering 405 when it does not.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	for _, m := range methods {
		w.Header().Add("Allow", m)
	}
	adminError(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, "application/json", map[string]string{"error": msg})
}
