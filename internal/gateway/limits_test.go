package gateway

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
)

func TestFitRecordLimits(t *testing.T) {
	cfg := config.Default()
	cfg.CSVDrop.Dir = "/tmp/x"
	cfg.HTTP.MaxBodyBytes, cfg.MLLP.MaxMessageBytes, cfg.CSVDrop.MaxRowBytes = 4<<20, 512<<10, 2<<20

	// An external server with NATS's default max_payload: every limit above what fits is
	// lowered, with room for headers; a smaller one is kept.
	got := fitRecordLimits(cfg, 1<<20, zerolog.Nop())
	limit := int64(1<<20 - 64<<10)
	if got.HTTP.MaxBodyBytes != limit || int64(got.CSVDrop.MaxRowBytes) != limit || got.MLLP.MaxMessageBytes != 512<<10 {
		t.Errorf("at 1 MiB: got body %d, row %d, message %d; want %d, %d, %d",
			got.HTTP.MaxBodyBytes, got.CSVDrop.MaxRowBytes, got.MLLP.MaxMessageBytes, limit, limit, 512<<10)
	}
	// The embedded server is sized from the limits, so nothing changes there.
	if got := fitRecordLimits(cfg, 8<<20+64<<10, zerolog.Nop()); got.HTTP.MaxBodyBytes != 4<<20 || got.CSVDrop.MaxRowBytes != 2<<20 {
		t.Errorf("at 8 MiB: limits changed to %d and %d", got.HTTP.MaxBodyBytes, got.CSVDrop.MaxRowBytes)
	}
}
