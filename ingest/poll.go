package ingest

import (
	"math"
	"time"

	"github.com/psgw/psgw/internal/backoff"
)

// PollWait is how long a polling adapter (a folder, a database) waits before its next poll
// after failures consecutive polls that could not store what they read: the poll interval
// itself while nothing fails; after a failure the interval doubled per failure, at most 256
// times the interval and at most a minute (or the interval, if that is longer), so that a
// store that is down is not polled hard and one that is back is soon noticed.
func PollWait(interval time.Duration, failures int) time.Duration {
	if failures <= 0 {
		return interval
	}
	b := backoff.Backoff{Initial: interval, Max: min(min(interval, math.MaxInt64>>8)<<8, max(time.Minute, interval))}
	return b.Delay(failures + 1)
}
