package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
)

// TestEnvelopesRoundTrip: what a stage writes with PublishRaw or PublishOutbox, the next
// stage reads back unchanged from the stored message.
func TestEnvelopesRoundTrip(t *testing.T) {
	q := openAt(t, t.TempDir())
	defer q.Close()
	ctx := context.Background()
	raw := RawEnvelope{Kind: "incident", Source: "datix", LocalID: "INC/1", Key: "0123abcd", RecordID: "datix.0123abcd.r2",
		Revision: 2, ReceivedAt: time.Date(2026, 11, 25, 10, 4, 5, 123456789, time.UTC), RejectReason: "row 3: not valid UTF-8"}
	res, err := q.PublishRaw(ctx, raw, []byte(`{}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := q.RawMessage(ctx, res.Seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadRawEnvelope(m.Header)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(raw, got); d != "" {
		t.Errorf("raw envelope read back (-wrote +read):\n%s", d)
	}
	if m.Subject != RawSubject("incident", "datix", "0123abcd") {
		t.Errorf("got subject %s, want the raw subject of kind, source and key", m.Subject)
	}

	out := OutboxEnvelope{Source: "datix", Key: "0123abcd", RawSeq: res.Seq, Revision: 2, PayloadHash: "h1", Replay: "alice (operator)"}
	pub, err := q.PublishOutbox(ctx, out, "raw-1", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := q.JetStream().Stream(ctx, OutboxStream)
	if err != nil {
		t.Fatal(err)
	}
	om, err := s.GetMsg(ctx, pub.Seq)
	if err != nil {
		t.Fatal(err)
	}
	gotOut, err := ReadOutboxEnvelope(om.Header)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(out, gotOut); d != "" {
		t.Errorf("outbox envelope read back (-wrote +read):\n%s", d)
	}
}

// TestReadEnvelopeNamesTheHeader: a header that is missing where required, or does not
// parse, is an error naming the header and its rule (never its value), and the fields that
// could be read are still returned.
func TestReadEnvelopeNamesTheHeader(t *testing.T) {
	good := OutboxEnvelope{Source: "datix", Key: "k1", RawSeq: 7, Revision: 1, PayloadHash: "h1"}.header()
	with := func(h nats.Header, name, value string) nats.Header {
		c := nats.Header{}
		for k, v := range h {
			c[k] = append([]string(nil), v...)
		}
		if value == "" {
			c.Del(name)
		} else {
			c.Set(name, value)
		}
		return c
	}
	rawGood := RawEnvelope{Kind: "incident", Source: "datix", Key: "k1"}.header()
	tests := []struct {
		name   string
		read   func() (string, string, error) // source, key, error
		header string
	}{
		{"outbox raw seq not a number", outboxRead(with(good, hdrRawSeq, "seven")), hdrRawSeq},
		{"outbox raw seq zero", outboxRead(with(good, hdrRawSeq, "0")), hdrRawSeq},
		{"outbox raw seq missing", outboxRead(with(good, hdrRawSeq, "")), hdrRawSeq},
		{"outbox revision not a number", outboxRead(with(good, hdrRevision, "2b")), hdrRevision},
		{"outbox hash missing", outboxRead(with(good, hdrHash, "")), hdrHash},
		{"outbox source missing", outboxRead(with(good, hdrSource, "")), hdrSource},
		{"raw received not a time", rawRead(with(rawGood, hdrReceived, "yesterday 943 476 5919")), hdrReceived},
		{"raw revision zero", rawRead(with(rawGood, hdrRevision, "0")), hdrRevision},
		{"raw revision not a number", rawRead(with(rawGood, hdrRevision, "two")), hdrRevision},
		{"raw key missing", rawRead(with(rawGood, hdrKey, "")), hdrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			source, key, err := tc.read()
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("got %v, want ErrBadEnvelope", err)
			}
			if !strings.Contains(err.Error(), tc.header) {
				t.Errorf("got %q, want it to name %s", err, tc.header)
			}
			for _, v := range []string{"seven", "2b", "943 476 5919", "two"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("got %q, which quotes the header's value", err)
				}
			}
			if tc.header != hdrSource && source != "datix" {
				t.Errorf("got source %q, want datix read despite the other fault", source)
			}
			if tc.header != hdrKey && key != "k1" {
				t.Errorf("got key %q, want k1 read despite the other fault", key)
			}
		})
	}
}

func outboxRead(h nats.Header) func() (string, string, error) {
	return func() (string, string, error) {
		e, err := ReadOutboxEnvelope(h)
		return e.Source, e.Key, err
	}
}

func rawRead(h nats.Header) func() (string, string, error) {
	return func() (string, string, error) {
		e, err := ReadRawEnvelope(h)
		return e.Source, e.Key, err
	}
}

// FuzzReadOutboxEnvelope: any header values are read without panicking, and an envelope read
// without error is written back to headers that read as the same envelope.
func FuzzReadOutboxEnvelope(f *testing.F) {
	f.Add("datix", "k1", "7", "1", "h1", "")
	f.Add("datix", "k1", "18446744073709551615", "0", "h", "alice (operator)")
	f.Add("", "", "-1", "+3", "", "")
	f.Add("datix", "k1", "0x10", "1e3", "h1", "")
	f.Fuzz(func(t *testing.T, source, key, rawSeq, revision, hash, replay string) {
		h := nats.Header{hdrSource: {source}, hdrKey: {key}, hdrRawSeq: {rawSeq}, hdrRevision: {revision}, hdrHash: {hash}, hdrReplay: {replay}}
		e, err := ReadOutboxEnvelope(h)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("got %v, want ErrBadEnvelope", err)
			}
			return
		}
		again, err := ReadOutboxEnvelope(e.header())
		if err != nil || again != e {
			t.Fatalf("read %+v, wrote and read back %+v (%v)", e, again, err)
		}
	})
}

// FuzzReadRawEnvelope is FuzzReadOutboxEnvelope for the raw record's envelope.
func FuzzReadRawEnvelope(f *testing.F) {
	f.Add("incident", "datix", "INC-1", "k1", "2", "2026-11-25T10:04:05.123456789Z", "")
	f.Add("adt", "epr", "", "k2", "", "", "")
	f.Add("incident", "datix", "x", "k3", "0", "2026-11-25T10:04:05+01:00", "row 3: bad")
	f.Add("incident", "datix", "x", "k3", "007", "2026-02-30T10:04:05Z", "")
	f.Fuzz(func(t *testing.T, kind, source, localID, key, revision, received, reason string) {
		h := nats.Header{hdrKind: {kind}, hdrSource: {source}, hdrLocalID: {localID}, hdrKey: {key}, hdrRevision: {revision},
			hdrReceived: {received}, hdrRejectReason: {reason}, nats.MsgIdHdr: {"id-1"}}
		e, err := ReadRawEnvelope(h)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("got %v, want ErrBadEnvelope", err)
			}
			return
		}
		w := e.header()
		w.Set(nats.MsgIdHdr, e.RecordID) // JetStream writes it from the publish's message id
		again, err := ReadRawEnvelope(w)
		if err != nil || !again.ReceivedAt.Equal(e.ReceivedAt) {
			t.Fatalf("read %+v, wrote and read back %+v (%v)", e, again, err)
		}
		again.ReceivedAt = e.ReceivedAt
		if again != e {
			t.Fatalf("read %+v, wrote and read back %+v", e, again)
		}
	})
}

// TestRecordStoredAfterAnother: a record stored after another of its incident (After set) has
// a message id of its own, distinct from the same record stored first, so that content
// changed back (A, B, A) is not dropped as a duplicate; it reads back with its record id, and
// LastRawEnvelope finds it as the incident's newest. The same record after the same one is
// still dropped by JetStream.
func TestRecordStoredAfterAnother(t *testing.T) {
	q := openAt(t, t.TempDir())
	defer q.Close()
	ctx := context.Background()
	a := RawEnvelope{Kind: "incident", Source: "datix", Key: "0123abcd", RecordID: "datix.0123abcd.hA"}
	b := a
	b.RecordID, b.After = "datix.0123abcd.hB", a.RecordID
	again := a
	again.After = b.RecordID
	var seqs []uint64
	for i, env := range []RawEnvelope{a, b, again, again} {
		res, err := q.PublishRaw(ctx, env, []byte(`{}`), 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Duplicate != (i == 3) {
			t.Errorf("publish %d (%s after %q): duplicate %v, want %v", i, env.RecordID, env.After, res.Duplicate, i == 3)
		}
		seqs = append(seqs, res.Seq)
	}
	last, seq, err := q.LastRawEnvelope(ctx, a.Subject())
	if err != nil {
		t.Fatal(err)
	}
	if last.RecordID != a.RecordID || seq != seqs[2] {
		t.Errorf("newest record: %s at %d, want %s at %d", last.RecordID, seq, a.RecordID, seqs[2])
	}
	if a.MsgID() != a.RecordID || again.MsgID() == a.MsgID() || !strings.HasPrefix(again.MsgID(), a.RecordID+".a") {
		t.Errorf("message ids: first %q, after B %q; want the record id, then the record id and a hash of B's", a.MsgID(), again.MsgID())
	}
}
