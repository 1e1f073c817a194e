package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/sim"
)

// NewSimulator builds a simulator that validates payloads with the same taxonomy checks as
// the gateway, so that anything the gateway would quarantine is refused there too.
func NewSimulator(keys []string, faults sim.Faults, log zerolog.Logger) (*sim.Simulator, error) {
	return sim.New(sim.Options{
		SubscriptionKeys: keys,
		Faults:           faults,
		Validate:         SimValidate,
		Logger:           log,
	})
}

// SimValidate adapts the gateway's own payload check to the simulator, so that whatever the
// gateway would quarantine the simulator refuses too.
func SimValidate(version int, res map[string]any) []sim.Issue {
	ps := fhir.CheckPayload(version, res)
	out := make([]sim.Issue, len(ps))
	for i, p := range ps {
		out[i] = sim.Issue{Path: p.Path, Rule: p.Rule, Message: p.Message}
	}
	return out
}

// addSim builds the simulator on a free loopback port for demo mode, to be served in its
// turn: before the forwarder, so that it outlives the forwarder's last in-flight send.
func (g *Gateway) addSim() error {
	s, err := NewSimulator([]string{DemoKey}, sim.Faults{}, g.log.With().Str("component", "simulator").Logger())
	if err != nil {
		return fmt.Errorf("starting simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting simulator: %w", err)
	}
	g.Sim = s
	g.simURL = "http://" + ln.Addr().String()
	g.parts.add(serverPart("simulator", &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}, ln))
	return nil
}

// StoreBucket is the JetStream KV bucket holding facts about the store itself; its key
// "demo" says that demo mode ran on it.
const StoreBucket = "psgw_store"

const demoMark = "demo"

// ErrDemoStore means the store was used in demo mode and psgw was started to deliver to a
// national endpoint: its incidents are demo data and would be sent to LFPSE. Start on a
// fresh data_dir (or stream), or run in demo mode again.
var ErrDemoStore = errors.New("this store (data_dir) was used in demo mode: its incidents are demo data and a national endpoint would receive them; " +
	"start psgw with a fresh, empty data_dir (or, with queue.nats_url, remove the psgw streams and buckets), or keep using it with --demo")

// checkDemoStore marks the store when demo mode runs on it, and refuses a store so marked
// when incidents would be delivered to a national endpoint (docs/delivery.md, "Demo data
// never reaches LFPSE"). With no endpoint nothing is sent, so that start is allowed.
func (g *Gateway) checkDemoStore(ctx context.Context, demo bool, baseURL string) error {
	kv, err := g.Queue.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: StoreBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return err
	}
	if demo {
		if _, err := kv.Put(ctx, demoMark, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			return fmt.Errorf("marking the store as demo data: %w", err)
		}
		return nil
	}
	_, err = getFresh(ctx, kv, demoMark)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("reading bucket %s: %w", StoreBucket, err)
	case baseURL == "":
		g.log.Warn().Msg("this store was used in demo mode: its incidents are held; never point it at a national endpoint")
		return nil
	}
	return ErrDemoStore
}
