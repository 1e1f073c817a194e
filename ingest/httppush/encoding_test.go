package httppush_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/httppush"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestBodyEncodings pins how the push API reads what HTTP lets a client say about its body
// (CONTRACT.md section 2: 415 for a wrong content type, 413 over the limit): a gzip
// Content-Encoding is decoded (and the limit applies to what it decodes to), any other coding
// and any charset but UTF-8 is a 415 naming the header, and a leading UTF-8 byte order mark,
// which JSON allows a reader to ignore, does not make a good incident a 400.
func TestBodyEncodings(t *testing.T) {
	store := adaptertest.NewStore()
	_, url := serve(t, httppush.Config{MaxBodyBytes: 2048, PublishTimeout: time.Minute},
		ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
	ctx := context.Background()
	// A body of 200 kB of spaces compresses to well under the 2048-byte limit.
	bomb := incident(90)[:len(incident(90))-1] + `,"immediate_actions":"` + strings.Repeat(" ", 200_000) + `"}`
	for _, tc := range []struct {
		name, contentType, body string
		hdr                     map[string]string
		wantStatus              int
		wantBody                string
		wantStored              string // the record's Data, when one is stored
	}{
		{name: "gzip", contentType: "application/json", body: gzipped(t, incident(10)),
			hdr: map[string]string{"Content-Encoding": "gzip"}, wantStatus: 202, wantStored: incident(10)},
		{name: "gzip in upper case", contentType: "application/json", body: gzipped(t, incident(11)),
			hdr: map[string]string{"Content-Encoding": "GZIP"}, wantStatus: 202, wantStored: incident(11)},
		{name: "identity", contentType: "application/json", body: incident(12),
			hdr: map[string]string{"Content-Encoding": "identity"}, wantStatus: 202, wantStored: incident(12)},
		{name: "gzip that is not gzip", contentType: "application/json", body: incident(13),
			hdr: map[string]string{"Content-Encoding": "gzip"}, wantStatus: 400, wantBody: "gzip"},
		{name: "gzip over the limit once decoded", contentType: "application/json", body: gzipped(t, bomb),
			hdr: map[string]string{"Content-Encoding": "gzip"}, wantStatus: 413, wantBody: "limit of 2048 bytes"},
		{name: "br", contentType: "application/json", body: incident(14),
			hdr: map[string]string{"Content-Encoding": "br"}, wantStatus: 415, wantBody: "Content-Encoding"},
		{name: "two codings", contentType: "application/json", body: gzipped(t, gzipped(t, incident(15))),
			hdr: map[string]string{"Content-Encoding": "gzip, gzip"}, wantStatus: 415, wantBody: "Content-Encoding"},
		{name: "charset utf-8", contentType: "application/json; charset=UTF-8", body: incident(16), wantStatus: 202, wantStored: incident(16)},
		{name: "charset utf8", contentType: `application/json; charset="utf8"`, body: incident(17), wantStatus: 202, wantStored: incident(17)},
		{name: "charset latin-1", contentType: "application/json; charset=iso-8859-1", body: incident(18), wantStatus: 415, wantBody: "charset"},
		{name: "byte order mark", contentType: "application/json", body: "\ufeff" + incident(19), wantStatus: 202, wantStored: incident(19)},
		{name: "byte order mark twice", contentType: "application/json", body: "\ufeff\ufeff" + incident(20), wantStatus: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(store.Records())
			resp, body, err := post(ctx, url, tc.contentType, tc.body, tc.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status: got %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body: got %q, want it to contain %q", body, tc.wantBody)
			}
			recs := store.Records()
			switch {
			case tc.wantStored == "" && len(recs) != before:
				t.Errorf("stored %d records, want none", len(recs)-before)
			case tc.wantStored != "" && len(recs) != before+1:
				t.Errorf("stored %d records, want 1", len(recs)-before)
			case tc.wantStored != "" && string(recs[len(recs)-1].Data) != tc.wantStored:
				t.Errorf("stored %q, want %q", recs[len(recs)-1].Data, tc.wantStored)
			}
		})
	}
	// The 415s name the header so the sender knows what to change.
	resp, body, err := post(ctx, url, "application/json", incident(21), map[string]string{"Content-Encoding": "deflate"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, "gzip") {
		t.Errorf("deflate: got %d %s, want 415 naming gzip as what is read", resp.StatusCode, body)
	}
}
