package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/psgw/psgw/config"
)

// TestSpineExternalNATS runs the spine scenario against an external NATS server in a
// container (queue.nats_url), as a regional deployment would. It needs Docker and skips
// cleanly without it; TestSpineExactlyOnce covers the same behaviour on the embedded server.
func TestSpineExternalNATS(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx := context.Background()
	c, err := testcontainers.Run(ctx, "nats:2.11-alpine",
		testcontainers.WithCmd("-js", "-sd", "/data"),
		testcontainers.WithExposedPorts("4222/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Server is ready").WithStartupTimeout(60*time.Second)),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("starting nats container: %v", err)
	}
	ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
	if err != nil {
		t.Fatal(err)
	}
	spineScenario(t, newHarness(t, func(cfg *config.Config) { cfg.Queue.NATSURL = ep }))
}
