package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

func openCluster(ctx context.Context, url string, replicas int) (*Queue, error) {
	return Open(ctx, Options{
		NATSURL: url, Replicas: replicas, RawMaxBytes: 64 << 20, RawMaxAge: time.Hour,
		OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, Logger: zerolog.Nop(),
	})
}

// TestClusterStreamsAtReplicas: on a three-node cluster the streams and buckets are created
// at queue.replicas, and a write is stored.
func TestClusterStreamsAtReplicas(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx := t.Context()
	q, err := openCluster(ctx, c.URL(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, name := range []string{RawStream, OutboxStream} {
		si, err := q.StreamInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if si.Config.Replicas != 3 {
			t.Errorf("%s: got %d replicas, want 3", name, si.Config.Replicas)
		}
	}
	kv, err := q.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_test"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; got != 3 {
		t.Errorf("bucket: got %d replicas, want 3", got)
	}
	if _, err := q.Publish(ctx, RawSubject("incident", "s", "k"), "m1", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestClusterTooSmallForReplicas: asking a three-node cluster for five replicas is a start-up
// error naming both numbers, at once rather than a hang.
func TestClusterTooSmallForReplicas(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := openCluster(ctx, c.URL(), 5)
	if !errors.Is(err, ErrReplicas) {
		t.Fatalf("got %v, want ErrReplicas", err)
	}
	for _, want := range []string{"queue.replicas is 5", "3 server(s)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to refuse, want an answer, not a wait", d)
	}
}

// TestExistingStreamAtOtherReplicas: streams made at replicas 1 are not quietly changed by a
// gateway configured for 3: it refuses to start and names both counts.
func TestExistingStreamAtOtherReplicas(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx := t.Context()
	q, err := openCluster(ctx, c.URL(), 1)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	_, err = openCluster(ctx, c.URL(), 3)
	if !errors.Is(err, ErrReplicas) {
		t.Fatalf("got %v, want ErrReplicas", err)
	}
	for _, want := range []string{"stream " + RawStream + " exists with 1 replica(s)", "queue.replicas is 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// A bucket made at 1 is refused the same way by a queue at 3.
	q1, err := openCluster(ctx, c.URL(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q1.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_r1"}); err != nil {
		t.Fatal(err)
	}
	q1.Close()
	q3 := &Queue{opts: Options{Replicas: 3}, js: mustJS(t, c.URL())}
	_, err = q3.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_r1"})
	if !errors.Is(err, ErrReplicas) || !strings.Contains(err.Error(), "bucket psgw_r1 exists with 1 replica(s)") {
		t.Fatalf("got %v, want ErrReplicas naming the bucket and both counts", err)
	}
}

func mustJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	q := &Queue{opts: Options{NATSURL: url}, log: zerolog.Nop()}
	nc, err := q.connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestQuorumLossAndRecovery: with two of three nodes gone, a write is refused as unavailable
// with the cause named (never stored half-way, never a hang past the publish timeout), and
// once the nodes are back writes are stored again without restarting anything.
func TestQuorumLossAndRecovery(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx := t.Context()
	// Connected to node 1 only, so that the client stays connected while the others go.
	q, err := openCluster(ctx, c.NodeURL(0), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Publish(ctx, RawSubject("incident", "s", "k"), "before", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	c.Stop(2)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = q.Publish(pctx, RawSubject("incident", "s", "k"), "during", []byte("x"), nil)
	cancel()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish without quorum: got %v, want ErrUnavailable", err)
	}
	// The node left may answer as leader until its election timeout tells it it is alone.
	wait.For(t, 30*time.Second, "health to name "+CauseNoQuorum, func() (bool, string) {
		herr := q.Healthy(ctx)
		return errors.Is(herr, ErrUnavailable) && strings.Contains(herr.Error(), CauseNoQuorum), fmt.Sprint(herr)
	})
	c.Start(1)
	c.Start(2)
	wait.For(t, 60*time.Second, "a write stored after the nodes' return", func() (bool, string) {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := q.Publish(pctx, RawSubject("incident", "s", "k"), "after", []byte("x"), nil)
		return err == nil, fmt.Sprint(err)
	})
	// One stored write says the raw stream has its quorum again; the health check asks every
	// stream and bucket, whose leaders are elected one by one, so it is awaited too (a single
	// read here failed under load with "no JetStream quorum").
	wait.For(t, 60*time.Second, "health after recovery", func() (bool, string) {
		herr := q.Healthy(ctx)
		return herr == nil, fmt.Sprint(herr)
	})
}

// TestStartUnreachable: a gateway started where no server answers waits, logging the cause,
// and its start-up gives up with "server unreachable" only when its context ends.
func TestStartUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nats://%s", l.Addr())
	_ = l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = openCluster(ctx, url, 1)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), CauseUnreachable) {
		t.Fatalf("got %v, want ErrUnavailable naming %q", err, CauseUnreachable)
	}
}

// TestStartBeforeCluster: a gateway started before its cluster (a compose file's start
// order) starts by itself once the cluster is there.
func TestStartBeforeCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	url := c.URL()
	c.Shutdown()
	done := make(chan error, 1)
	go func() {
		q, err := openCluster(t.Context(), url, 3)
		if err == nil {
			q.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Open returned %v with no server up, want it to wait", err)
	case <-time.After(time.Second):
	}
	for i := range 3 {
		c.Start(i)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Open did not return within 60s of the cluster starting")
	}
}

// lockedBuffer is a log written by the queue's goroutines and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBucketCreatedOnceClusterAnswers: a bucket (or stream) whose creation times out because
// the cluster cannot answer now is asked for again, the cause logged, until the cluster
// answers, instead of failing the gateway's start. A replica of test/cluster exited at start
// with "creating bucket psgw_ledger_3: context deadline exceeded" on a loaded machine where
// the cluster was only slow.
func TestBucketCreatedOnceClusterAnswers(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	ctx := t.Context()
	var log lockedBuffer
	// Connected to node 1 only, so that the client stays connected while the others go.
	q, err := Open(ctx, Options{
		NATSURL: c.NodeURL(0), Replicas: 3, RawMaxBytes: 64 << 20, RawMaxAge: time.Hour,
		OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, Logger: zerolog.New(&log),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c.Stop(1)
	c.Stop(2)
	// Once the node left is no longer the meta leader (it steps down when it hears from no
	// majority), a create request is not answered until a leader is elected: as on a loaded
	// cluster, the request times out. (While it still leads, it answers at once that it
	// cannot place the bucket, which is not this case.)
	wait.For(t, 60*time.Second, "the node left to step down as meta leader", func() (bool, string) {
		return !c.Servers[0].JetStreamIsLeader(), "still the meta leader"
	})
	done := make(chan error, 1)
	go func() {
		_, err := q.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_slow"})
		done <- err
	}()
	wait.For(t, 60*time.Second, "the bucket's creation to fail once and be waited for", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("creating a bucket with no quorum returned %v, want it to wait", err)
		default:
		}
		l := log.String()
		return strings.Contains(l, `"creating":"bucket psgw_slow"`) && strings.Contains(l, CauseNoQuorum), l
	})
	c.Start(1)
	c.Start(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("creating the bucket once the cluster answers: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the bucket was not created within 90 s of the nodes' return")
	}
}
