package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The causes a store that cannot take writes is reported with (docs/cluster.md, "What each
// failure costs"). They are the words an operator searches the logs and /readyz for.
const (
	// CauseUnreachable: no NATS server answers at queue.nats_url.
	CauseUnreachable = "server unreachable"
	// CauseNoQuorum: a server answers but JetStream does not: a cluster that has lost the
	// majority of its nodes, or whose meta leader is being elected.
	CauseNoQuorum = "no JetStream quorum"
)

// ErrReplicas means the cluster cannot hold psgw's streams at queue.replicas: it has fewer
// JetStream servers than replicas, or a stream or bucket already exists at another replica
// count. Starting would either hang or quietly change the data's redundancy, so the gateway
// refuses to start; the error names both numbers.
var ErrReplicas = errors.New("replica count mismatch")

// Cause says in an operator's words why err (from a publish, a read or a health check) could
// not reach the store, or "" when it is not a connection or quorum failure.
func Cause(nc *nats.Conn, err error) string {
	if nc != nil && !nc.IsConnected() {
		return CauseUnreachable
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return CauseUnreachable
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return CauseNoQuorum
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 503 {
		return CauseNoQuorum
	}
	if strings.Contains(err.Error(), "temporarily unavailable") {
		return CauseNoQuorum
	}
	return ""
}

// CauseOf is the cause an error the queue returned names (Publish, Healthy and Open write
// it into their ErrUnavailable), or "" when it names none (a full stream, say). The gateway
// passes it on to sources, which must never see the rest of the error (addresses).
func CauseOf(err error) string {
	if err == nil || !errors.Is(err, ErrUnavailable) {
		return ""
	}
	msg := err.Error()
	for _, c := range []string{CauseUnreachable, CauseNoQuorum} {
		if strings.Contains(msg, c) {
			return c
		}
	}
	return ""
}

// waitUsable waits, until ctx ends, for the external cluster to be connected and its
// JetStream to answer, logging the cause every interval while it is neither. A gateway
// started before its cluster (a compose file's start order, a cluster mid-election) then
// starts by itself once the cluster is there, instead of hanging on its first stream
// request or failing at once.
func (q *Queue) waitUsable(ctx context.Context, interval time.Duration) error {
	var last string
	for {
		err := q.probe(ctx)
		if err == nil {
			if last != "" {
				q.log.Info().Msg("nats jetstream usable")
			}
			return nil
		}
		cause := Cause(q.nc, err)
		if q.opts.Waiting != nil {
			q.opts.Waiting(cause)
		}
		if cause == "" {
			cause = err.Error()
		}
		if cause != last || interval >= 5*time.Second {
			q.log.Warn().Str("cause", cause).Str("url", redactURL(q.opts.NATSURL)).Msg("waiting for nats jetstream")
		}
		last = cause
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %s (%s)", ErrUnavailable, cause, redactURL(q.opts.NATSURL))
		case <-t.C:
		}
		interval = min(2*interval, 5*time.Second)
	}
}

// whileUnavailable runs op, which creates or opens what, again while it fails because the
// external cluster cannot answer now (a timeout, no quorum, no connection: Cause), logging
// the cause, until it succeeds, fails otherwise, or ctx ends. Creating a stream at three
// replicas needs the meta leader to place it and the new group to elect a leader; on a
// loaded cluster that outlasted one request's timeout (5 s), and the gateway gave up its
// start and exited although the cluster was only slow (a replica of test/cluster that never
// became ready: "creating bucket psgw_ledger_3: context deadline exceeded"). A create
// request made again finds the stream made by the first, or makes it. A replica count the
// cluster cannot hold (ErrReplicas) is not waited for. The embedded server is not waited for.
func (q *Queue) whileUnavailable(ctx context.Context, what string, op func() error) error {
	interval := 500 * time.Millisecond
	for {
		err := op()
		if err == nil || q.srv != nil || errors.Is(err, ErrReplicas) || ctx.Err() != nil {
			return err
		}
		cause := Cause(q.nc, err)
		if cause == "" {
			return err
		}
		if q.opts.Waiting != nil {
			q.opts.Waiting(cause) // the front door names it to sources meanwhile
		}
		q.log.Warn().Str("cause", cause).Str("creating", what).Err(err).Msg("waiting for nats jetstream")
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		interval = min(2*interval, 5*time.Second)
	}
}

// probe asks JetStream for the account's info: the cheapest request that needs a meta leader.
func (q *Queue) probe(ctx context.Context) error {
	if !q.nc.IsConnected() {
		return nats.ErrDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := q.js.AccountInfo(ctx)
	return err
}

// probeStream asks for the raw stream's info, which its stream leader answers: a server
// that has lost the cluster's majority may still answer for the account (AccountInfo) from
// what it knows, but no stream of three replicas has a leader there.
func (q *Queue) probeStream(ctx context.Context) error {
	if err := q.probe(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := q.js.Stream(ctx, RawStream)
	if err != nil {
		return err
	}
	_, err = s.Info(ctx)
	return err
}

// checkClusterSize refuses a replica count the cluster cannot hold. A server outside a
// cluster holds one replica; in a cluster the count is the servers the client has heard of
// (the cluster gossips its members' client URLs), which counts a server that is down but
// configured as a route, so a cluster missing one node of three still starts at replicas 3.
func (q *Queue) checkClusterSize() error {
	if q.opts.Replicas <= 1 {
		return nil
	}
	servers := 1
	if q.nc.ConnectedClusterName() != "" {
		servers = max(len(q.nc.Servers()), 1)
	}
	if servers < q.opts.Replicas {
		return fmt.Errorf("%w: queue.replicas is %d but the NATS %s has %d server(s); a stream needs a server per replica",
			ErrReplicas, q.opts.Replicas, clusterWord(q.nc), servers)
	}
	return nil
}

func clusterWord(nc *nats.Conn) string {
	if name := nc.ConnectedClusterName(); name != "" {
		return "cluster " + name
	}
	return "server (not clustered)"
}

// checkReplicas refuses an existing stream (a bucket's stream too) held at another replica
// count than the configured one: CreateOrUpdate would change it quietly, moving the data's
// redundancy without an operator deciding to.
func (q *Queue) checkReplicas(ctx context.Context, js jetstream.JetStream, stream, what string) error {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	have := s.CachedInfo().Config.Replicas
	if have != q.opts.Replicas {
		return fmt.Errorf("%w: %s exists with %d replica(s) but queue.replicas is %d; set queue.replicas to %d, or change the stream's replicas on the cluster first (docs/cluster.md, \"Moving an existing install\")",
			ErrReplicas, what, have, q.opts.Replicas, have)
	}
	return nil
}

// replicaError turns the server's refusal of a stream at a replica count it cannot place
// into ErrReplicas naming both numbers, so it reads like the check above.
func (q *Queue) replicaError(what string, err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.ErrorCode {
	case 10023, 10074: // insufficient resources; replicas > 1 not supported in non-clustered mode
		return fmt.Errorf("%w: the NATS %s cannot place %s at queue.replicas %d (%s)",
			ErrReplicas, clusterWord(q.nc), what, q.opts.Replicas, apiErr.Description)
	}
	return err
}

// redactURL drops credentials from a NATS URL list for logs and errors.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// WaitCluster waits, until ctx ends, for the external cluster to answer, and checks it has
// the servers the replica count needs: Ensure's first steps, for a command that creates the
// streams itself (`psgw migrate`).
func (q *Queue) WaitCluster(ctx context.Context) error {
	if q.srv != nil {
		return nil
	}
	if err := q.waitUsable(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	return q.checkClusterSize()
}
