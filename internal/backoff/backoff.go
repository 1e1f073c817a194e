// Package backoff is psgw's one formula for how long to wait before trying again: a delay that
// doubles (or grows by a step) from a first value up to a cap, with optional full jitter, as
// tailscale's util/backoff is for Tailscale. Every retry and restart in the tree takes its
// delay from a Backoff, so that the caps, the jitter and the overflow guard are written once
// (docs/architecture.md, "Retries and restarts").
//
// It imports nothing of psgw's, so that every package, adapters included, may use it.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is a retry policy. The zero value waits for nothing. A Backoff is a plain value,
// safe to copy and to use from any goroutine; the count of failures is the caller's.
type Backoff struct {
	// Initial is the ceiling of the first delay. Zero or less: every delay is Floor.
	Initial time.Duration
	// Max caps the ceiling. It is a hard cap: zero or less makes every ceiling zero.
	Max time.Duration
	// Linear makes the ceiling grow by Initial with each failure instead of doubling: for a
	// contended write, where the next writer is usually one step behind.
	Linear bool
	// Jitter draws each delay uniformly from [0, ceiling] ("full jitter"), so that many
	// parties failing together do not retry in step. Without it the delay is the ceiling.
	Jitter bool
	// Floor is added to every delay, so that a jittered one is never close to nothing.
	Floor time.Duration
}

// Ceiling is the longest delay before retry number n (1 for the first): Initial doubled (or
// grown by Initial, if Linear) n-1 times, at most Max. An n below 1 counts as 1. It never
// overflows, whatever n is.
func (b Backoff) Ceiling(n int) time.Duration {
	d := b.Initial
	if d <= 0 || b.Max <= 0 {
		return 0
	}
	if d >= b.Max || n <= 1 {
		return min(d, b.Max)
	}
	if b.Linear {
		if room := b.Max - d; time.Duration(n-1) > room/b.Initial {
			return b.Max
		}
		return d + time.Duration(n-1)*b.Initial
	}
	for i := 1; i < n && d < b.Max; i++ { // at most 63 rounds: d at least doubles each
		if d > b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}

// Delay is the wait before retry number n: the ceiling, or with Jitter a uniform draw from
// [0, ceiling], plus Floor.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Ceiling(n)
	if b.Jitter && d > 0 {
		d = rand.N(min(d, math.MaxInt64-1) + 1)
	}
	return d + b.Floor
}

// Sleep waits for d or until ctx is done, and returns ctx's error if it ended first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
