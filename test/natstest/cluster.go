// Package natstest runs a NATS JetStream cluster of embedded servers on loopback for tests:
// several real nats-server instances in the test process, routed to each other, each with
// its own store in a temp dir, so that replicas, quorum loss and a node's return can be
// shown in seconds without Docker.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a running cluster. Servers[i] is nil while node i is stopped.
type Cluster struct {
	t       testing.TB
	Name    string
	Servers []*server.Server
	opts    []*server.Options
}

// StartCluster starts n JetStream servers clustered on loopback and waits until they have
// a meta leader. They are shut down when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Name: "psgw-test", Servers: make([]*server.Server, n), opts: make([]*server.Options, n)}
	// The ports are found free and then given up before the servers take them, so another
	// test process can take one first (a node then never becomes ready: seen in CI). Such a
	// start is abandoned and tried again on new ports.
	for attempt := 1; ; attempt++ {
		err := c.tryStart(n)
		if err == nil {
			break
		}
		c.Shutdown()
		if attempt == 3 {
			t.Fatalf("starting the cluster: %v", err)
		}
		t.Logf("starting the cluster, attempt %d: %v; trying other ports", attempt, err)
	}
	t.Cleanup(c.Shutdown)
	c.WaitLeader()
	return c
}

// tryStart picks ports and starts n nodes on them, each given 20 s to take its ports.
func (c *Cluster) tryStart(n int) error {
	clientPorts, routePorts := freePorts(c.t, n), freePorts(c.t, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		c.opts[i] = &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: c.t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
	}
	for i := range n {
		s, err := server.NewServer(c.opts[i])
		if err != nil {
			return fmt.Errorf("nats node %d: %w", i+1, err)
		}
		go s.Start()
		c.Servers[i] = s
		if !s.ReadyForConnections(20 * time.Second) {
			return fmt.Errorf("nats node %d not ready on port %d", i+1, c.opts[i].Port)
		}
	}
	return nil
}

// Start starts node i (again, with the same store, after Stop).
func (c *Cluster) Start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatalf("starting nats node %d: %v", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		c.t.Fatalf("nats node %d not ready", i+1)
	}
	c.Servers[i] = s
}

// Stop shuts node i down, as a crash or a network cut would take it away.
func (c *Cluster) Stop(i int) {
	if s := c.Servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Servers[i] = nil
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.Servers {
		c.Stop(i)
	}
}

// URL is the comma-separated client URLs of every node, as queue.nats_url takes them.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// NodeURL is node i's client URL alone.
func (c *Cluster) NodeURL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// WaitLeader waits until a running node sees a JetStream meta leader.
func (c *Cluster) WaitLeader() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			if s != nil && s.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no JetStream meta leader within 30s")
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	var ls []net.Listener
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}
