package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"time"
)

// Kinds of injected fault, as counted in Stats.Faults and logged.
const (
	FaultError        = "error"         // answered 500, 502 or 503; nothing stored
	FaultRateLimit    = "rate_limit"    // answered 429 by chance (RateLimitRate)
	FaultStorm        = "storm"         // answered 429 because of StormUntil
	FaultReset        = "reset"         // connection reset; nothing stored
	FaultLostResponse = "lost_response" // stored, then the connection dropped unanswered
	FaultDown         = "down"          // outage (Down)
	FaultLatency      = "latency"       // answer delayed by Latency
	// The faults that store the write first and then answer in a way that does not say so,
	// as a national service behind a gateway can (docs/simulator.md, "Stored, then…").
	FaultStoreThenError = "store_then_error" // stored, then answered StoreThenStatus (a 5xx)
	FaultStoreThenSlow  = "store_then_slow"  // stored, then answered only after StoreThenSlowFor
	FaultStoreThenReset = "store_then_reset" // stored, then the connection reset (RST)
	FaultTruncated      = "truncated"        // stored, then 201 with its body cut short
)

// DefaultStoreThenSlowFor is how long a store-then-slow answer waits when StoreThenSlowFor is
// 0: longer than any client's timeout, so the client gives up first.
const DefaultStoreThenSlowFor = 10 * time.Minute

// Values of Faults.DownMode.
const (
	DownModeStatus = "503"   // the default: every request answered 503
	DownModeReset  = "reset" // every connection reset, as when nothing listens behind the gateway
)

// Faults says how the simulator misbehaves. The zero value is a well-behaved service. Faults
// apply to the national API only, never to the /_sim/ endpoints.
//
// The order matters: Latency first, then Down (before the key check, as an outage hides
// everything), then the subscription key, then a storm, then one roll of the dice that picks
// at most one of ErrorRate, RateLimitRate and ResetRate (so each is a true fraction of
// requests and their sum must not exceed 1). LostResponseRate is rolled separately, only for
// writes that were stored, together with the other stored-then faults (StoreThenErrorRate,
// StoreThenSlowRate, StoreThenResetRate, TruncateRate): one roll picks at most one of them, so
// their sum must not exceed 1 either.
//
// In JSON, durations are Go duration strings ("250ms", "1m") and StormUntil is RFC 3339.
type Faults struct {
	ErrorRate        float64       // fraction of requests answered 500, 502 or 503; nothing stored
	RateLimitRate    float64       // fraction answered 429 with Retry-After and the APIM plain JSON body
	RetryAfter       time.Duration // Retry-After of a 429, rounded up to whole seconds; 0 means 1s
	Latency          time.Duration // delay before answering; ends early if the client goes away
	ResetRate        float64       // fraction whose connection is reset before anything is stored
	LostResponseRate float64       // fraction of successful writes stored, then dropped unanswered
	Down             bool          // outage: every request fails as DownMode says
	DownMode         string        // DownModeStatus ("" too) or DownModeReset
	StormUntil       time.Time     // every request before this instant gets 429 (a 429 storm)
	StormFor         time.Duration // input only: SetFaults and New turn it into StormUntil = now + StormFor

	// StoreThenErrorRate is the fraction of successful writes stored, then answered with
	// StoreThenStatus, as a gateway answers when its backend committed too slowly.
	StoreThenErrorRate float64
	StoreThenStatus    int // a 5xx; 0 means 504 (Gateway Timeout)
	// StoreThenSlowRate is the fraction of successful writes stored, then answered (201 or
	// 200, as usual) only after StoreThenSlowFor, or never if the client hangs up first.
	StoreThenSlowRate float64
	StoreThenSlowFor  time.Duration // 0 means DefaultStoreThenSlowFor
	// StoreThenResetRate is the fraction of successful writes stored, then reset (RST).
	StoreThenResetRate float64
	// TruncateRate is the fraction of successful writes stored, then answered with the
	// success status and a body cut off halfway (the connection closes mid-body).
	TruncateRate float64
}

// afterStoreRates are the faults rolled once a write is stored, in the order of the roll.
func (f Faults) afterStoreRates() []struct {
	kind string
	rate float64
} {
	return []struct {
		kind string
		rate float64
	}{
		{FaultLostResponse, f.LostResponseRate}, {FaultStoreThenError, f.StoreThenErrorRate},
		{FaultStoreThenSlow, f.StoreThenSlowRate}, {FaultStoreThenReset, f.StoreThenResetRate},
		{FaultTruncated, f.TruncateRate},
	}
}

// Validate reports settings that make no sense: rates outside 0..1 or summing past 1,
// negative durations, an unknown DownMode.
func (f Faults) Validate() error {
	rates := []struct {
		name string
		v    float64
	}{
		{"error_rate", f.ErrorRate}, {"rate_limit_rate", f.RateLimitRate},
		{"reset_rate", f.ResetRate}, {"lost_response_rate", f.LostResponseRate},
		{"store_then_error_rate", f.StoreThenErrorRate}, {"store_then_slow_rate", f.StoreThenSlowRate},
		{"store_then_reset_rate", f.StoreThenResetRate}, {"truncate_rate", f.TruncateRate},
	}
	for _, r := range rates {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("fault %s must be between 0 and 1", r.name)
		}
	}
	if f.ErrorRate+f.RateLimitRate+f.ResetRate > 1+1e-9 {
		return errors.New("fault error_rate, rate_limit_rate and reset_rate together must not exceed 1")
	}
	sum := 0.0
	for _, r := range f.afterStoreRates() {
		sum += r.rate
	}
	if sum > 1+1e-9 {
		return errors.New("fault lost_response_rate, store_then_error_rate, store_then_slow_rate, store_then_reset_rate and truncate_rate together must not exceed 1")
	}
	if f.StoreThenStatus != 0 && (f.StoreThenStatus < 500 || f.StoreThenStatus > 599) {
		return errors.New("fault store_then_status must be a 5xx status (500 to 599), or 0 for 504")
	}
	if f.RetryAfter < 0 || f.Latency < 0 || f.StormFor < 0 || f.StoreThenSlowFor < 0 {
		return errors.New("fault durations must not be negative")
	}
	switch f.DownMode {
	case "", DownModeStatus, DownModeReset:
	default:
		return fmt.Errorf("fault down_mode must be %q or %q", DownModeStatus, DownModeReset)
	}
	return nil
}

// retryAfterSeconds is what goes in Retry-After and in the 429 message.
func (f Faults) retryAfterSeconds() int {
	if f.RetryAfter <= 0 {
		return 1
	}
	return int(math.Ceil(f.RetryAfter.Seconds()))
}

// faultsJSON is the wire form of Faults: durations as strings people can type.
type faultsJSON struct {
	ErrorRate        float64    `json:"error_rate"`
	RateLimitRate    float64    `json:"rate_limit_rate"`
	RetryAfter       string     `json:"retry_after"`
	Latency          string     `json:"latency"`
	ResetRate        float64    `json:"reset_rate"`
	LostResponseRate float64    `json:"lost_response_rate"`
	Down             bool       `json:"down"`
	DownMode         string     `json:"down_mode,omitempty"`
	StormUntil       *time.Time `json:"storm_until,omitempty"`
	StormFor         string     `json:"storm_for,omitempty"`

	StoreThenErrorRate float64 `json:"store_then_error_rate"`
	StoreThenStatus    int     `json:"store_then_status"`
	StoreThenSlowRate  float64 `json:"store_then_slow_rate"`
	StoreThenSlowFor   string  `json:"store_then_slow_for"`
	StoreThenResetRate float64 `json:"store_then_reset_rate"`
	TruncateRate       float64 `json:"truncate_rate"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	w := faultsJSON{
		ErrorRate: f.ErrorRate, RateLimitRate: f.RateLimitRate,
		RetryAfter: f.RetryAfter.String(), Latency: f.Latency.String(),
		ResetRate: f.ResetRate, LostResponseRate: f.LostResponseRate,
		Down: f.Down, DownMode: f.DownMode,
		StoreThenErrorRate: f.StoreThenErrorRate, StoreThenStatus: f.StoreThenStatus,
		StoreThenSlowRate: f.StoreThenSlowRate, StoreThenSlowFor: f.StoreThenSlowFor.String(),
		StoreThenResetRate: f.StoreThenResetRate, TruncateRate: f.TruncateRate,
	}
	if !f.StormUntil.IsZero() {
		t := f.StormUntil
		w.StormUntil = &t
	}
	if f.StormFor != 0 {
		w.StormFor = f.StormFor.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the form MarshalJSON writes. Unknown fields are an error, so a typo
// does not silently leave a fault off. Fields left out are zero.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var w faultsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decoding faults: %w", err)
	}
	var out Faults
	var err error
	if out.RetryAfter, err = parseDuration("retry_after", w.RetryAfter); err != nil {
		return err
	}
	if out.Latency, err = parseDuration("latency", w.Latency); err != nil {
		return err
	}
	if out.StormFor, err = parseDuration("storm_for", w.StormFor); err != nil {
		return err
	}
	if out.StoreThenSlowFor, err = parseDuration("store_then_slow_for", w.StoreThenSlowFor); err != nil {
		return err
	}
	out.StoreThenErrorRate, out.StoreThenStatus = w.StoreThenErrorRate, w.StoreThenStatus
	out.StoreThenSlowRate, out.StoreThenResetRate, out.TruncateRate = w.StoreThenSlowRate, w.StoreThenResetRate, w.TruncateRate
	out.ErrorRate, out.RateLimitRate = w.ErrorRate, w.RateLimitRate
	out.ResetRate, out.LostResponseRate = w.ResetRate, w.LostResponseRate
	out.Down, out.DownMode = w.Down, w.DownMode
	if w.StormUntil != nil {
		out.StormUntil = *w.StormUntil
	}
	*f = out
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault %s: %w", field, err)
	}
	return d, nil
}

// BindFlags defines one flag per fault on fs, writing into f; f's current values are the
// defaults. Check the result with Validate (New does) after fs.Parse.
func (f *Faults) BindFlags(fs *flag.FlagSet) {
	fs.Float64Var(&f.ErrorRate, "error-rate", f.ErrorRate, "fraction of national API requests answered 500, 502 or 503")
	fs.Float64Var(&f.RateLimitRate, "rate-limit-rate", f.RateLimitRate, "fraction of requests answered 429 with Retry-After")
	fs.DurationVar(&f.RetryAfter, "retry-after", f.RetryAfter, "Retry-After sent with a 429, rounded up to seconds (0 means 1s)")
	fs.DurationVar(&f.Latency, "latency", f.Latency, "delay added before every answer")
	fs.Float64Var(&f.ResetRate, "reset-rate", f.ResetRate, "fraction of requests whose connection is reset, nothing stored")
	fs.Float64Var(&f.LostResponseRate, "lost-response-rate", f.LostResponseRate, "fraction of accepted writes stored but never answered")
	fs.BoolVar(&f.Down, "down", f.Down, "simulate an outage: every request fails")
	fs.StringVar(&f.DownMode, "down-mode", f.DownMode, `how an outage fails: "503" (default) or "reset"`)
	fs.DurationVar(&f.StormFor, "storm", f.StormFor, "answer every request 429 for this long after start")
	fs.Float64Var(&f.StoreThenErrorRate, "store-then-error-rate", f.StoreThenErrorRate, "fraction of accepted writes stored, then answered with --store-then-status")
	fs.IntVar(&f.StoreThenStatus, "store-then-status", f.StoreThenStatus, "the 5xx a stored-then-error write is answered with (0 means 504)")
	fs.Float64Var(&f.StoreThenSlowRate, "store-then-slow-rate", f.StoreThenSlowRate, "fraction of accepted writes stored, then answered only after --store-then-slow-for")
	fs.DurationVar(&f.StoreThenSlowFor, "store-then-slow-for", f.StoreThenSlowFor, "how long a stored-then-slow answer waits (0 means 10m: past any client's timeout)")
	fs.Float64Var(&f.StoreThenResetRate, "store-then-reset-rate", f.StoreThenResetRate, "fraction of accepted writes stored, then reset (RST) unanswered")
	fs.Float64Var(&f.TruncateRate, "truncate-rate", f.TruncateRate, "fraction of accepted writes stored, then answered with the body cut short")
}
