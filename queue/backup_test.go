package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TestBackupRestoreIntoAnotherStore: a backup of one store restored into an empty embedded
// store and into an external server (the path from the embedded store to a cluster) gives the
// same messages, bucket values and consumers; restoring over existing streams is refused.
func TestBackupRestoreIntoAnotherStore(t *testing.T) {
	ctx := context.Background()
	src := openAt(t, t.TempDir())
	defer src.Close()
	for i := range 50 {
		if _, err := src.Publish(ctx, RawSubject("incident", "datix", fmt.Sprint("k", i)), fmt.Sprint("m", i), []byte(fmt.Sprintf(`{"n":%d}`, i)), nats.Header{}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := src.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_ledger", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "datix.k1", []byte("delivered")); err != nil {
		t.Fatal(err)
	}
	raw, _ := src.JetStream().Stream(ctx, RawStream)
	if _, err := raw.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "mapper", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "backup")
	m, err := Backup(ctx, src.Conn(), dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Streams) != 3 || m.Streams[0].Name != RawStream || m.Streams[2].Name != "KV_psgw_ledger" {
		t.Fatalf("backup holds %+v, want PSGW_RAW first and the ledger last", m.Streams)
	}
	if _, err := Backup(ctx, src.Conn(), dir, "test"); err == nil {
		t.Error("a second backup into the same directory was accepted, want a refusal")
	}

	check := func(t *testing.T, js jetstream.JetStream, wantReplicas int) {
		t.Helper()
		s, err := js.Stream(ctx, RawStream)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 50 {
			t.Errorf("restored %s holds %d messages, want 50", RawStream, n)
		}
		if r := s.CachedInfo().Config.Replicas; r != wantReplicas {
			t.Errorf("restored %s has %d replicas, want %d", RawStream, r, wantReplicas)
		}
		if _, err := s.Consumer(ctx, "mapper"); err != nil {
			t.Errorf("the mapper's consumer was not restored: %v", err)
		}
		kv, err := js.KeyValue(ctx, "psgw_ledger")
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, "datix.k1")
		if err != nil || string(e.Value()) != "delivered" {
			t.Errorf("restored ledger entry: %v %v, want delivered", e, err)
		}
	}

	t.Run("embedded", func(t *testing.T) {
		dst, err := OpenStore(Options{DataDir: t.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		if _, err := Restore(ctx, dst.Conn(), dir, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, dst.JetStream(), 1)
		if _, err := Restore(ctx, dst.Conn(), dir, RestoreOptions{}); err == nil {
			t.Error("restore over existing streams was accepted, want a refusal")
		}
	})

	t.Run("external server", func(t *testing.T) {
		srv, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), Port: -1, Host: "127.0.0.1", NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		defer srv.Shutdown()
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := Restore(ctx, nc, dir, RestoreOptions{Replicas: 1}); err != nil {
			t.Fatal(err)
		}
		// psgw then starts against it: Open keeps what was restored.
		q, err := Open(ctx, Options{NATSURL: srv.ClientURL(), Replicas: 1, RawMaxBytes: 64 << 20, RawMaxAge: time.Hour,
			OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		check(t, q.JetStream(), 1)
	})
}

// BenchmarkBackupRestore measures a backup of a raw stream of 20,000 records of 1 KiB and its
// restore into an empty store; the rate is in bytes of records (b.SetBytes).
func BenchmarkBackupRestore(b *testing.B) {
	ctx := context.Background()
	src, err := Open(ctx, Options{DataDir: b.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 512 << 20,
		RawMaxAge: time.Hour, OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, SyncInterval: time.Second, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	const n, size = 20000, 1024
	body := make([]byte, size)
	for i := range n {
		if _, err := src.Publish(ctx, RawSubject("incident", "datix", fmt.Sprint("k", i)), fmt.Sprint("m", i), body, nats.Header{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(n * size)
	var backup, restore time.Duration
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "backup")
		t0 := time.Now()
		if _, err := Backup(ctx, src.Conn(), dir, "bench"); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		dst, err := OpenStore(Options{DataDir: b.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Restore(ctx, dst.Conn(), dir, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(t1)
		backup += t1.Sub(t0)
		dst.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/backup.Seconds(), "records-backed-up/s")
	b.ReportMetric(float64(n)*float64(b.N)/restore.Seconds(), "records-restored/s")
}

// FuzzReadManifest: whatever a backup directory's manifest.json holds, ReadManifest returns an
// error or a manifest whose every file is <stream>.snap inside the directory, and never panics.
func FuzzReadManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"streams":[{"name":"PSGW_RAW","file":"PSGW_RAW.snap","config":{},"state":{}}]}`))
	f.Add([]byte(`{"format":1,"streams":[{"name":"..","file":"../../etc/passwd","config":{},"state":{}}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"streams":[{"name":"A","file":"A.snap"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifest(dir)
		if err != nil {
			return
		}
		for _, s := range m.Streams {
			if filepath.Dir(filepath.Join(dir, s.File)) != dir || s.File != s.Name+".snap" {
				t.Fatalf("accepted stream %q with file %q outside the backup", s.Name, s.File)
			}
		}
	})
}
