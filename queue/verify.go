package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamView is what Verify compares of one stream.
type streamView struct {
	msgs, bytes, first, last uint64
	replicas                 int
	// consumers are the durable consumers, by name.
	consumers map[string]consumerView
	// keys, for a bucket's stream, is each key's revision (delete markers included).
	keys map[string]uint64
}

// consumerView is where a durable consumer stands: what it has delivered, what is
// acknowledged, and what it still has to deliver.
type consumerView struct {
	delivered, ackFloor, pending uint64
	ackPending                   int
}

// Verify compares every stream named on dst with src: messages, bytes, first and last
// sequences, each durable consumer's delivered and acknowledged sequences and pending counts,
// each bucket's keys and their revisions, and the replica count. Nothing writes to the source,
// but its server still removes what ages out (raw_max_age, a bucket's TTL), so the source is
// read before and after the target, and a figure of the target must match one of the two
// reads (or lie between them); anything else is reported, every difference in the error.
func Verify(ctx context.Context, src, dst *nats.Conn, names []string, replicas int) error {
	jsSrc, err := jetstream.New(src)
	if err != nil {
		return err
	}
	jsDst, err := jetstream.New(dst)
	if err != nil {
		return err
	}
	var diffs []string
	for _, name := range names {
		before, err := viewStream(ctx, jsSrc, name)
		if err != nil {
			return fmt.Errorf("reading the source's %s: %w", name, err)
		}
		got, err := viewStream(ctx, jsDst, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			diffs = append(diffs, name+": missing on the target")
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the target's %s: %w", name, err)
		}
		after, err := viewStream(ctx, jsSrc, name)
		if err != nil {
			return fmt.Errorf("reading the source's %s: %w", name, err)
		}
		diffs = append(diffs, compareViews(name, before, after, got, replicas)...)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", ErrVerify, strings.Join(diffs, "; "))
	}
	return nil
}

func viewStream(ctx context.Context, js jetstream.JetStream, name string) (streamView, error) {
	v := streamView{consumers: map[string]consumerView{}}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return v, err
	}
	info := s.CachedInfo()
	v.msgs, v.bytes, v.first, v.last = info.State.Msgs, info.State.Bytes, info.State.FirstSeq, info.State.LastSeq
	v.replicas = info.Config.Replicas
	cl := s.ListConsumers(ctx)
	for ci := range cl.Info() {
		if ci.Config.Durable == "" {
			continue // an ordered consumer reading the stream (this check's own, say)
		}
		v.consumers[ci.Name] = consumerView{delivered: ci.Delivered.Stream, ackFloor: ci.AckFloor.Stream,
			pending: ci.NumPending, ackPending: ci.NumAckPending}
	}
	if err := cl.Err(); err != nil {
		return v, fmt.Errorf("listing consumers: %w", err)
	}
	if bucket, ok := strings.CutPrefix(name, "KV_"); ok {
		if v.keys, err = bucketKeys(ctx, js, bucket); err != nil {
			return v, fmt.Errorf("reading keys: %w", err)
		}
	}
	return v, nil
}

// bucketKeys is every key of a bucket with the revision of its latest entry.
func bucketKeys(ctx context.Context, js jetstream.JetStream, bucket string) (map[string]uint64, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	keys := map[string]uint64{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch ended early")
			}
			if e == nil { // every key read
				return keys, nil
			}
			keys[e.Key()] = e.Revision()
		}
	}
}

// compareViews lists how got, the target's stream, differs from the source read before and
// after it.
func compareViews(name string, before, after, got streamView, replicas int) []string {
	var diffs []string
	num := func(what string, a, b, g uint64) {
		if g < min(a, b) || g > max(a, b) {
			if a == b {
				diffs = append(diffs, fmt.Sprintf("%s: %s %d on the target, %d on the source", name, what, g, a))
			} else {
				diffs = append(diffs, fmt.Sprintf("%s: %s %d on the target, %d to %d on the source", name, what, g, a, b))
			}
		}
	}
	num("messages", before.msgs, after.msgs, got.msgs)
	num("bytes", before.bytes, after.bytes, got.bytes)
	if got.msgs > 0 || before.msgs > 0 || after.msgs > 0 {
		// An empty stream's first sequence says nothing (0 or the last one plus one).
		num("first sequence", before.first, after.first, got.first)
	}
	num("last sequence", before.last, after.last, got.last)
	if got.replicas != replicas {
		diffs = append(diffs, fmt.Sprintf("%s: %d replicas on the target, want %d", name, got.replicas, replicas))
	}
	for _, c := range union(before.consumers, after.consumers, got.consumers) {
		b, inB := before.consumers[c]
		a, inA := after.consumers[c]
		g, inG := got.consumers[c]
		switch {
		case !inG:
			diffs = append(diffs, fmt.Sprintf("%s: consumer %s missing on the target", name, c))
			continue
		case !inB && !inA:
			diffs = append(diffs, fmt.Sprintf("%s: consumer %s on the target only", name, c))
			continue
		case !inB:
			b = a
		case !inA:
			a = b
		}
		num("consumer "+c+" delivered sequence", b.delivered, a.delivered, g.delivered)
		num("consumer "+c+" acknowledged floor", b.ackFloor, a.ackFloor, g.ackFloor)
		num("consumer "+c+" pending", b.pending, a.pending, g.pending)
		num("consumer "+c+" awaiting acknowledgement", uint64(b.ackPending), uint64(a.ackPending), uint64(g.ackPending))
	}
	var keyDiffs []string
	for _, k := range union(before.keys, after.keys, got.keys) {
		b, a, g := before.keys[k], after.keys[k], got.keys[k] // 0: absent
		if g != b && g != a {
			keyDiffs = append(keyDiffs, fmt.Sprintf("%s revision %d on the target, %d on the source", k, g, b))
		}
	}
	if n := len(keyDiffs); n > 0 {
		if n > 5 {
			keyDiffs = append(keyDiffs[:5], fmt.Sprintf("and %d more", n-5))
		}
		diffs = append(diffs, fmt.Sprintf("%s: %d key(s) differ (0: absent): %s", name, n, strings.Join(keyDiffs, ", ")))
	}
	return diffs
}

// union is the sorted keys of the maps.
func union[V any](ms ...map[string]V) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	ks := make([]string, 0, len(set))
	for k := range set {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
