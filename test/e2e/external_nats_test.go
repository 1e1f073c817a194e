package e2e

import (
	"testing"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/test/dockertest"
)

// TestSpineExternalNATS runs the spine scenario against an external NATS server in a
// container (queue.nats_url), as a regional deployment would. The server image is built here
// from the nats-server module psgw already embeds (no registry is reachable). It skips where
// there is no Docker engine, unless PSGW_REQUIRE_DOCKER is set (as in CI);
// TestSpineExactlyOnce covers the same behaviour on the embedded server.
func TestSpineExternalNATS(t *testing.T) {
	n := dockertest.StartNATS(t, dockertest.NATSOptions{})
	spineScenario(t, newHarness(t, func(cfg *config.Config) { cfg.Queue.NATSURL = n.URL }))
}
