package queue

import (
	"errors"
	"fmt"
	"testing"
)

// TestCauseOf: the cause an error of the queue names is found again for the source's answer;
// an error that names none, or is not ErrUnavailable, gives "".
func TestCauseOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: %s: publishing to x: %v", ErrUnavailable, CauseNoQuorum, errors.New("nats: timeout")), CauseNoQuorum},
		{fmt.Errorf("%w: %s", ErrUnavailable, CauseUnreachable), CauseUnreachable},
		{fmt.Errorf("wrapped: %w", fmt.Errorf("%w: %s (nats://h:4222)", ErrUnavailable, CauseUnreachable)), CauseUnreachable},
		{fmt.Errorf("%w: publishing to x: maximum bytes exceeded", ErrUnavailable), ""},
		{errors.New(CauseNoQuorum), ""},
		{nil, ""},
	} {
		if got := CauseOf(tc.err); got != tc.want {
			t.Errorf("CauseOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
