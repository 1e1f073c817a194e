package ingest_test

import (
	"errors"
	"testing"

	"github.com/psgw/psgw/ingest"
)

// TestUnavailableNamesItsCause: an error made by Unavailable is ErrUnavailable (and the error
// it wraps), and its cause is found again through any wrapping; any other error names none.
func TestUnavailableNamesItsCause(t *testing.T) {
	inner := errors.New("publishing to x: nats: timeout")
	err := ingest.Unavailable("no JetStream quorum", inner)
	if !errors.Is(err, ingest.ErrUnavailable) || !errors.Is(err, inner) {
		t.Errorf("got %v, want ErrUnavailable wrapping the store's error", err)
	}
	if got := ingest.UnavailableCause(errors.Join(errors.New("outer"), err)); got != "no JetStream quorum" {
		t.Errorf("cause through wrapping: got %q", got)
	}
	if got, want := err.Error(), "durable storage unavailable: no JetStream quorum: publishing to x: nats: timeout"; got != want {
		t.Errorf("message: got %q, want %q", got, want)
	}
	if got := ingest.UnavailableCause(ingest.ErrUnavailable); got != "" {
		t.Errorf("plain ErrUnavailable: got cause %q, want none", got)
	}
	if got := ingest.Unavailable("", nil).Error(); got != ingest.ErrUnavailable.Error() {
		t.Errorf("no cause, no error: got %q", got)
	}
}
