package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// A backup is a directory: manifest.json and one JetStream snapshot file per stream (the raw
// and outbox streams and every key-value bucket), <stream>.snap, as the server streams it
// (docs/deploy.md, "Backup and restore"). The snapshots are taken online, one stream after
// another, in the order backupRank gives, so that what a later snapshot knows is never behind
// what an earlier one implies.

// ManifestFile names the backup's table of contents.
const ManifestFile = "manifest.json"

// Manifest describes a backup.
type Manifest struct {
	// Format is 1: the layout above.
	Format int `json:"format"`
	// Started and Finished bound when the snapshots were taken.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Version is the psgw that took it.
	Version string           `json:"psgw_version"`
	Streams []StreamSnapshot `json:"streams"`
}

// StreamSnapshot is one stream in a backup.
type StreamSnapshot struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Messages uint64 `json:"messages"`
	Bytes    int64  `json:"bytes"`
	// Config and State are the server's, as the restore request must carry them.
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

// backupRank orders the streams upstream first: an adapter's cursor (saved only after its
// rows are stored) before the raw stream that holds those rows; the raw stream, with the
// mapper's place in it, before the outbox the mapper writes; the outbox before the delivery
// ledger, which the forwarder writes before it removes a message from the outbox. Restored,
// a record the mapper had not finished is mapped again and the ledger, newest of all, says
// what was already sent.
func backupRank(stream string) int {
	switch {
	case strings.HasPrefix(stream, "KV_psgw_adapter"):
		return 0
	case stream == RawStream:
		return 1
	case stream == OutboxStream:
		return 3
	case strings.HasPrefix(stream, "KV_psgw_ledger"):
		return 5
	default: // the demographics store and anything else: derived from the raw stream
		return 2
	}
}

// Backup snapshots every stream the connection's account holds into dir, which must be
// empty or absent, and writes the manifest last: a directory without one is incomplete.
func Backup(ctx context.Context, nc *nats.Conn, dir, version string) (Manifest, error) {
	m := Manifest{Format: 1, Started: time.Now().UTC(), Version: version}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return m, fmt.Errorf("creating backup directory: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return m, err
	} else if len(ents) > 0 {
		return m, fmt.Errorf("backup directory %s is not empty", dir)
	}
	names, err := streamNames(ctx, nc)
	if err != nil {
		return m, err
	}
	slices.SortStableFunc(names, func(a, b string) int { return backupRank(a) - backupRank(b) })
	for _, name := range names {
		s, err := snapshotStream(ctx, nc, name, dir)
		if err != nil {
			return m, fmt.Errorf("snapshot of stream %s: %w", name, err)
		}
		m.Streams = append(m.Streams, s)
	}
	m.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := writeFileSync(filepath.Join(dir, ManifestFile), b); err != nil {
		return m, err
	}
	return m, nil
}

// LastSeq is the last sequence of stream in the backup (0 when it holds no such stream or
// none was ever stored in it): a restore marks the raw stream's, so that the mapper knows which
// records the backup's ledger may be behind on (docs/deploy.md, "What a restore brings back").
func (m Manifest) LastSeq(stream string) (uint64, error) {
	for _, s := range m.Streams {
		if s.Name != stream {
			continue
		}
		var st struct {
			LastSeq uint64 `json:"last_seq"`
		}
		if err := json.Unmarshal(s.State, &st); err != nil {
			return 0, fmt.Errorf("%s: state of stream %s: %w", ManifestFile, stream, err)
		}
		return st.LastSeq, nil
	}
	return 0, nil
}

// ReadManifest reads a backup's manifest.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("not a complete psgw backup: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.Format != 1 {
		return m, fmt.Errorf("%s: backup format %d, this psgw reads format 1", ManifestFile, m.Format)
	}
	for i, s := range m.Streams {
		// A stream name never holds a separator or a dot, so a manifest cannot send the
		// restore to read a file outside the backup.
		if s.Name == "" || strings.ContainsAny(s.Name, `/\. *>`) || s.File != s.Name+".snap" {
			return m, fmt.Errorf("%s: streams[%d]: name %q with file %q; want a stream name and <name>.snap", ManifestFile, i, s.Name, s.File)
		}
		if !json.Valid(s.Config) || !json.Valid(s.State) {
			return m, fmt.Errorf("%s: streams[%d] (%s): config and state must be JSON objects", ManifestFile, i, s.Name)
		}
	}
	return m, nil
}

// apiTimeout bounds one JetStream API request of a backup or restore.
const apiTimeout = 10 * time.Second

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

// request sends a JetStream API request and decodes its answer into out, returning the
// server's error if it gave one.
func request(ctx context.Context, nc *nats.Conn, subject string, req, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	msg, err := requestAnswered(ctx, nc, subject, b)
	if err != nil {
		return err
	}
	var resp struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("answer to %s: %w", subject, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if out != nil {
		return json.Unmarshal(msg.Data, out)
	}
	return nil
}

func streamNames(ctx context.Context, nc *nats.Conn) ([]string, error) {
	var names []string
	for offset := 0; ; {
		var resp struct {
			Total   int      `json:"total"`
			Streams []string `json:"streams"`
		}
		if err := request(ctx, nc, "$JS.API.STREAM.NAMES", map[string]int{"offset": offset}, &resp); err != nil {
			return nil, fmt.Errorf("listing streams: %w", err)
		}
		names = append(names, resp.Streams...)
		offset += len(resp.Streams)
		if len(resp.Streams) == 0 || offset >= resp.Total {
			return names, nil
		}
	}
}

// snapshotStream asks the server for a snapshot of stream (consumers included) and writes the
// chunks it streams to <dir>/<stream>.snap, acknowledging each so that the server sends more.
func snapshotStream(ctx context.Context, nc *nats.Conn, stream, dir string) (StreamSnapshot, error) {
	s := StreamSnapshot{Name: stream, File: stream + ".snap"}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return s, err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1) // the server's window bounds what is in flight
	var resp struct {
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	req := map[string]any{"deliver_subject": inbox, "chunk_size": 256 << 10}
	if err := request(ctx, nc, "$JS.API.STREAM.SNAPSHOT."+stream, req, &resp); err != nil {
		return s, err
	}
	s.Config, s.State = resp.Config, resp.State
	var st struct {
		Messages uint64 `json:"messages"`
	}
	_ = json.Unmarshal(resp.State, &st)
	s.Messages = st.Messages

	f, err := os.OpenFile(filepath.Join(dir, s.File), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return s, err
	}
	defer f.Close()
	for {
		// The server gives up on a receiver that is silent for 5 s; so does this side.
		if err := ctx.Err(); err != nil {
			return s, err
		}
		msg, err := sub.NextMsg(30 * time.Second)
		if err != nil {
			return s, fmt.Errorf("waiting for the next chunk: %w", err)
		}
		if len(msg.Data) == 0 {
			// The end: a status header says whether the server finished or gave up.
			if code := msg.Header.Get("Status"); code != "" && code != "204" {
				return s, fmt.Errorf("server ended the snapshot: %s %s", code, msg.Header.Get("Description"))
			}
			break
		}
		n, err := f.Write(msg.Data)
		s.Bytes += int64(n)
		if err != nil {
			return s, err
		}
		if msg.Reply != "" {
			if err := nc.Publish(msg.Reply, nil); err != nil {
				return s, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		return s, err
	}
	return s, f.Close()
}

// RestoreOptions adjust what is restored.
type RestoreOptions struct {
	// Replicas, when above 0, is the replica count each stream is restored with (an external
	// cluster at queue.replicas); else the count it was backed up with.
	Replicas int
}

// Restore creates every stream of the backup in dir from its snapshot. A stream that exists
// already is an error: restore into an empty store.
func Restore(ctx context.Context, nc *nats.Conn, dir string, o RestoreOptions) (Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return m, err
	}
	existing, err := streamNames(ctx, nc)
	if err != nil {
		return m, err
	}
	for _, s := range m.Streams {
		if slices.Contains(existing, s.Name) {
			return m, fmt.Errorf("stream %s already exists: restore only into an empty data directory or cluster", s.Name)
		}
	}
	for _, s := range m.Streams {
		if err := restoreStream(ctx, nc, dir, s, o); err != nil {
			return m, fmt.Errorf("restoring stream %s: %w", s.Name, err)
		}
	}
	return m, nil
}

func restoreStream(ctx context.Context, nc *nats.Conn, dir string, s StreamSnapshot, o RestoreOptions) error {
	cfg := s.Config
	if o.Replicas > 0 {
		var c map[string]any
		if err := json.Unmarshal(cfg, &c); err != nil {
			return err
		}
		c["num_replicas"] = o.Replicas
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		cfg = b
	}
	var resp struct {
		DeliverSubject string `json:"deliver_subject"`
	}
	req := map[string]json.RawMessage{"config": cfg, "state": s.State}
	if err := request(ctx, nc, "$JS.API.STREAM.RESTORE."+s.Name, req, &resp); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, s.File))
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 128<<10)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			// Each chunk is a request: the server answers when it has taken it, and an error
			// if it could not.
			if err := chunkRequest(ctx, nc, resp.DeliverSubject, buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	// An empty message ends the transfer; its answer comes once the stream is in place.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	msg, err := requestAnswered(ctx, nc, resp.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("finishing: %w", err)
	}
	var done struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &done); err != nil {
		return fmt.Errorf("finishing: %w", err)
	}
	if done.Error != nil {
		return done.Error
	}
	return nil
}

func chunkRequest(ctx context.Context, nc *nats.Conn, subject string, chunk []byte) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	msg, err := requestAnswered(ctx, nc, subject, chunk)
	if err != nil {
		return err
	}
	if len(msg.Data) > 0 {
		var resp struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(msg.Data, &resp) == nil && resp.Error != nil {
			return resp.Error
		}
	}
	return nil
}

// requestAnswered is a request sent again while no server subscribes to its subject, until ctx
// ends. On a cluster the subscription that takes a restore's chunks lives on the stream's
// leader and reaches the server this client is connected to a moment later, and the API has no
// responder while the meta leader is elected: the first chunk, or request, can find nobody
// (seen restoring into an in-process cluster on a loaded machine). A request nobody received
// did nothing, so sending it again is safe; any other failure is returned.
func requestAnswered(ctx context.Context, nc *nats.Conn, subject string, data []byte) (*nats.Msg, error) {
	wait := 10 * time.Millisecond
	for {
		msg, err := nc.RequestWithContext(ctx, subject, data)
		if !errors.Is(err, nats.ErrNoResponders) {
			return msg, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (%s)", err, subject)
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// writeFileSync writes b to path and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
