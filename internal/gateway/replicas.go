package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/queue/lease"
)

// Several gateways may run against one NATS cluster (docs/cluster.md). Each is named by its
// replica (config key replica, else the host name), and each run of it by an instance id new
// at every start. Work that must have one owner takes a lease (queue/lease): the pull
// adapters, which own a folder or a cursor, and the instance's own presence, which tells
// another gateway that a send this run started is still in progress. With the embedded
// server a gateway is alone, and every lease is held without asking.

// replicaName is the configured replica, else the host name.
func replicaName(cfg config.Config) string {
	if cfg.Replica != "" {
		return cfg.Replica
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "psgw"
}

// newInstance is an id for this run of the gateway.
func newInstance() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// presenceLease is the lease an instance holds while it runs.
func presenceLease(instance string) string { return "instance." + instance }

// openLeases opens the lease store: shared through the cluster, or alone on the embedded
// server.
func (g *Gateway) openLeases(ctx context.Context, cfg config.Config) error {
	holder := g.replica + "/" + g.instance
	if cfg.Queue.NATSURL == "" {
		g.leases = lease.Single(holder)
		return nil
	}
	var err error
	g.leases, err = lease.Open(ctx, g.Queue, holder, lease.DefaultTTL, g.log.With().Str("component", "lease").Logger())
	return err
}

// holdPresence holds this run's presence lease until ctx ends: other replicas read it to
// tell a send this run has in flight from one whose gateway died (docs/cluster.md).
func (g *Gateway) holdPresence(ctx context.Context) error {
	g.leases.Run(ctx, presenceLease(g.instance), nil, func(ctx context.Context) { <-ctx.Done() })
	return nil
}

// waitPresent waits until the presence lease is held, so that Start returns only once other
// replicas can see this run alive.
func (g *Gateway) waitPresent(startCtx context.Context) error {
	name := presenceLease(g.instance)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(30 * time.Second)
	for !g.leases.Held(name) {
		select {
		case <-startCtx.Done():
			return startCtx.Err()
		case <-deadline:
			return fmt.Errorf("announcing replica %s: its presence lease was not taken within 30s", g.replica)
		case <-t.C:
		}
	}
	return nil
}

// alive says whether the gateway run named instance is running: its presence lease is held.
// When the store cannot say, it is taken as alive, so that a send of it is waited for rather
// than judged interrupted.
func (g *Gateway) alive(ctx context.Context, instance string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := g.leases.HolderOf(ctx, presenceLease(instance))
	return err != nil || h != ""
}

// runAdapter runs an adapter's runner; one that keeps state (a folder, a cursor) runs only
// while this gateway holds its lease, and stands by otherwise.
func (g *Gateway) runAdapter(ctx context.Context, r *ingest.Runner, owned bool) {
	if !owned {
		r.Run(ctx)
		return
	}
	g.leases.Run(ctx, "adapter."+r.Status().Name, r.Standby, r.Run)
}
