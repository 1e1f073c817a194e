// Package wait is the tests' one way to wait for something to happen: poll a condition until
// it holds or a deadline passes, as nats-server's checkFor does, so that a test waits for
// exactly as long as the thing takes and never sleeps on a guess. Only tests import it.
//
// It imports nothing of psgw's, so that adapters' tests may use it too.
package wait

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled.
const Interval = 20 * time.Millisecond

// For polls cond every Interval until it reports true, and fails the test when timeout
// passes first, naming what it waited for and the state cond last described.
func For(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if last != "" {
				t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}

// Until is For for a condition with nothing to say about the state it saw.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	For(t, timeout, what, func() (bool, string) { return cond(), "" })
}
