package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

// TestMigrateToCluster: a store with messages, a durable consumer part-way through them (some
// acknowledged, some delivered and not yet, some never delivered) and a bucket whose keys were
// rewritten, copied to a three-node cluster at three replicas. Every stream is there at three
// replicas with the same sequences, the consumer resumes exactly where it stopped, the keys
// keep their revisions; a second migration into the now full cluster is refused, and a copy
// that lost a message fails the check.
func TestMigrateToCluster(t *testing.T) {
	ctx := context.Background()
	src := openAt(t, t.TempDir())
	defer src.Close()
	for i := range 40 {
		if _, err := src.Publish(ctx, RawSubject("incident", "datix", fmt.Sprint("k", i)), fmt.Sprint("m", i), []byte(fmt.Sprintf(`{"n":%d}`, i)), nats.Header{}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := src.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_ledger", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := kv.Put(ctx, fmt.Sprintf("datix.k%d", i%10), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "datix.k9"); err != nil {
		t.Fatal(err)
	}
	cons, err := src.Consumer(ctx, RawStream, jetstream.ConsumerConfig{Durable: "mapper", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// 10 acknowledged, 5 delivered and held, 25 never delivered.
	batch, err := cons.Fetch(15, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if n < 10 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n++
	}
	if n != 15 {
		t.Fatalf("fetched %d, want 15", n)
	}

	c := natstest.StartCluster(t, 3)
	dstNC, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer dstNC.Close()
	var progress []string
	res, err := Migrate(ctx, src.Conn(), dstNC, MigrateOptions{Replicas: 3, SpoolDir: t.TempDir(),
		Progress: func(s StreamCopy) { progress = append(progress, s.Name) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Streams) != 3 || res.Streams[0].Name != RawStream || progress[len(progress)-1] != "KV_psgw_ledger" {
		t.Errorf("copied %+v, told of %v; want the raw stream, the outbox and the ledger, upstream first", res.Streams, progress)
	}
	if msgs, _ := res.Totals(); msgs != 40+10 {
		t.Errorf("copied %d messages, want 50 (40 raw, 10 keys, one of them a delete marker)", msgs)
	}
	names := []string{RawStream, OutboxStream, "KV_psgw_ledger"}
	if err := Verify(ctx, src.Conn(), dstNC, names, 3); err != nil {
		t.Fatalf("the intact copy: %v", err)
	}

	js, err := jetstream.New(dstNC)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{RawStream, OutboxStream, "KV_psgw_ledger"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s on the cluster has %d replicas, want 3", name, r)
		}
		if cl := s.CachedInfo().Cluster; cl == nil || len(cl.Replicas) != 2 {
			t.Errorf("%s on the cluster: %+v, want a leader and two followers", name, cl)
		}
	}
	raw, _ := js.Stream(ctx, RawStream)
	if st := raw.CachedInfo().State; st.Msgs != 40 || st.FirstSeq != 1 || st.LastSeq != 40 {
		t.Errorf("raw stream on the cluster: %d messages, sequences %d to %d; want 40, 1 to 40", st.Msgs, st.FirstSeq, st.LastSeq)
	}
	mc, err := raw.Consumer(ctx, "mapper")
	if err != nil {
		t.Fatal(err)
	}
	ci := mc.CachedInfo()
	if ci.AckFloor.Stream != 10 || ci.Delivered.Stream != 15 || ci.NumAckPending != 5 || ci.NumPending != 25 {
		t.Errorf("the mapper's consumer on the cluster: ack floor %d, delivered %d, awaiting ack %d, pending %d; want 10, 15, 5, 25",
			ci.AckFloor.Stream, ci.Delivered.Stream, ci.NumAckPending, ci.NumPending)
	}
	if ci.Cluster == nil || len(ci.Cluster.Replicas) != 2 {
		t.Errorf("the mapper's consumer on the cluster: %+v, want three replicas like its stream", ci.Cluster)
	}
	// The next message it hands out is the first never delivered: nothing acknowledged comes
	// back, nothing pending is skipped.
	next, err := mc.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if md, _ := next.Metadata(); md.Sequence.Stream != 16 {
		t.Errorf("the mapper's next message on the cluster is stream sequence %d, want 16", md.Sequence.Stream)
	}
	ckv, err := js.KeyValue(ctx, "psgw_ledger")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		want, _ := kv.Get(ctx, fmt.Sprintf("datix.k%d", i))
		got, err := ckv.Get(ctx, fmt.Sprintf("datix.k%d", i))
		if err != nil || got.Revision() != want.Revision() || string(got.Value()) != string(want.Value()) {
			t.Errorf("key datix.k%d on the cluster: %v %v, want revision %d value %s", i, got, err, want.Revision(), want.Value())
		}
	}
	if _, err := ckv.Get(ctx, "datix.k9"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the deleted key on the cluster: %v, want not found", err)
	}

	// A second migration would merge two histories.
	_, err = Migrate(ctx, src.Conn(), dstNC, MigrateOptions{Replicas: 3, SpoolDir: t.TempDir()})
	if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), RawStream) {
		t.Errorf("migrating into a cluster holding psgw's streams: %v, want ErrTargetNotEmpty naming them", err)
	}

	// A copy that lost a message fails the check, naming the stream.
	// (The mapper's consumer has moved on since, by the Next above: a difference too.)
	if err := raw.DeleteMsg(ctx, 30); err != nil {
		t.Fatal(err)
	}
	err = Verify(ctx, src.Conn(), dstNC, names, 3)
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), RawStream+": messages 39 on the target, 40 on the source") {
		t.Errorf("a copy missing a message: %v, want ErrVerify naming the raw stream's count", err)
	}
	if _, err := ckv.Put(ctx, "datix.k1", []byte("changed")); err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, src.Conn(), dstNC, names, 3); err == nil || !strings.Contains(err.Error(), "datix.k1 revision") {
		t.Errorf("a copy with a key rewritten: %v, want the key named", err)
	}
}

// TestMigrateRefusesAnEmptySource: a data directory with no streams is a wrong data_dir,
// not a migration of nothing.
func TestMigrateRefusesAnEmptySource(t *testing.T) {
	ctx := context.Background()
	src, err := OpenStore(Options{DataDir: t.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := OpenStore(Options{DataDir: t.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := Migrate(ctx, src.Conn(), dst.Conn(), MigrateOptions{SpoolDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no streams") {
		t.Errorf("migrating an empty store: %v, want a refusal", err)
	}
}

// TestRequestAnsweredWaitsForAResponder: a request nobody subscribes to yet (a restore's chunk
// subject before the stream leader's subscription has reached this server) is sent again until
// someone answers, not failed at once; a request cut short by its context says which subject.
func TestRequestAnsweredWaitsForAResponder(t *testing.T) {
	q := openAt(t, t.TempDir())
	defer q.Close()
	nc := q.Conn()
	done := make(chan error, 1)
	var answer *nats.Msg
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		answer, err = requestAnswered(ctx, nc, "late.responder", []byte("chunk"))
		done <- err
	}()
	// Sent at least twice: the first found no responder.
	start := nc.Stats().OutMsgs
	wait.Until(t, 30*time.Second, "the request sent again", func() bool { return nc.Stats().OutMsgs >= start+2 })
	sub, err := nc.Subscribe("late.responder", func(m *nats.Msg) { _ = m.Respond(append([]byte("took "), m.Data...)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(answer.Data) != "took chunk" {
		t.Errorf("answer %q, want took chunk", answer.Data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := requestAnswered(ctx, nc, "nobody.here", nil); !errors.Is(err, nats.ErrNoResponders) || !strings.Contains(err.Error(), "nobody.here") {
		t.Errorf("a request nobody ever answers: %v, want no responders naming the subject", err)
	}
}

// TestCompareViewsAllowsAgeingOut: the source's server still removes what ages out while the
// copy is checked, so a figure of the target matching the source read before it or after it
// (or lying between) is no difference; anything else is, however small.
func TestCompareViewsAllowsAgeingOut(t *testing.T) {
	before := streamView{msgs: 100, bytes: 1000, first: 1, last: 100, replicas: 1,
		consumers: map[string]consumerView{"mapper": {delivered: 90, ackFloor: 80, pending: 10, ackPending: 10}},
		keys:      map[string]uint64{"a": 5, "b": 7}}
	after := streamView{msgs: 97, bytes: 970, first: 4, last: 100, replicas: 1,
		consumers: map[string]consumerView{"mapper": {delivered: 90, ackFloor: 80, pending: 10, ackPending: 10}},
		keys:      map[string]uint64{"b": 7}} // a aged out
	got := streamView{msgs: 98, bytes: 980, first: 3, last: 100, replicas: 3,
		consumers: map[string]consumerView{"mapper": {delivered: 90, ackFloor: 80, pending: 10, ackPending: 10}},
		keys:      map[string]uint64{"a": 5, "b": 7}}
	if d := compareViews("S", before, after, got, 3); len(d) != 0 {
		t.Errorf("a copy between two reads of an ageing source: %v, want no difference", d)
	}
	got.last, got.keys["b"], got.replicas = 99, 6, 1
	delete(got.consumers, "mapper")
	d := strings.Join(compareViews("S", before, after, got, 3), "; ")
	for _, want := range []string{"S: last sequence 99 on the target, 100 on the source", "S: 1 replicas on the target, want 3",
		"consumer mapper missing on the target", "b revision 6 on the target, 7 on the source"} {
		if !strings.Contains(d, want) {
			t.Errorf("differences %q, want %q among them", d, want)
		}
	}
}
