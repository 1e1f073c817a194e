package hl7

import (
	"bytes"
	"testing"
	"time"
)

func BenchmarkParseADT(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(msgA01v23)))
	for b.Loop() {
		m, err := Parse(msgA01v23)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ExtractADT(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(msgA01v23)))
	for b.Loop() {
		if _, err := Parse(msgA01v23); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadFrame(b *testing.B) {
	var stream bytes.Buffer
	for range 100 {
		_ = WriteFrame(&stream, msgA01v23)
	}
	r := bytes.NewReader(stream.Bytes())
	fr := NewFrameReader(r, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(msgA01v23)))
	n := 0
	for b.Loop() {
		if n == 100 {
			r.Reset(stream.Bytes())
			n = 0
		}
		if _, err := fr.ReadFrame(); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

func BenchmarkBuildACK(b *testing.B) {
	m := mustParse(b, msgA01v23)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = BuildACK(m, AckReject, "cannot parse", now)
	}
}
