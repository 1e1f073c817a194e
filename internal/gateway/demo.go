package gateway

import (
	"fmt"
	"net"
	"net/http"
	"time"

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
