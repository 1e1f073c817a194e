package hl7

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	plus1 := time.FixedZone("", 3600)
	minus5 := time.FixedZone("", -5*3600)
	tests := []struct {
		in      string
		def     *time.Location
		want    time.Time
		wantErr bool
	}{
		{in: "2024", want: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "202403", want: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "20240315", want: time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC)},
		{in: "2024031510", want: time.Date(2024, 3, 15, 10, 0, 0, 0, time.UTC)},
		{in: "202403151030", want: time.Date(2024, 3, 15, 10, 30, 0, 0, time.UTC)},
		{in: "20240315103045", want: time.Date(2024, 3, 15, 10, 30, 45, 0, time.UTC)},
		{in: "20240315103045.1", want: time.Date(2024, 3, 15, 10, 30, 45, 100e6, time.UTC)},
		{in: "20240315103045.1234", want: time.Date(2024, 3, 15, 10, 30, 45, 123400e3, time.UTC)},
		{in: "20240315103045+0100", want: time.Date(2024, 3, 15, 10, 30, 45, 0, plus1)},
		{in: "20240315103045.12-0500", want: time.Date(2024, 3, 15, 10, 30, 45, 120e6, minus5)},
		{in: "20240315103045+0000", def: plus1, want: time.Date(2024, 3, 15, 10, 30, 45, 0, time.UTC)},
		{in: "20240315103045", def: plus1, want: time.Date(2024, 3, 15, 10, 30, 45, 0, plus1)},
		{in: "20240229", want: time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{in: "", wantErr: true},
		{in: "20", wantErr: true},
		{in: "20240", wantErr: true},
		{in: "20230229", wantErr: true},
		{in: "20241301", wantErr: true},
		{in: "20240100", wantErr: true},
		{in: "2024031524", wantErr: true},
		{in: "202403151060", wantErr: true},
		{in: "20240315103060", wantErr: true},
		{in: "2024031510.5", wantErr: true},
		{in: "20240315103045.", wantErr: true},
		{in: "20240315103045+01", wantErr: true},
		{in: "20240315103045+1500", wantErr: true},
		{in: "20240315103045+0160", wantErr: true},
		{in: "2024-03-15", wantErr: true},
		{in: "2024031510304X", wantErr: true},
		{in: " 20240315", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, tt.def)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %v, want error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			_, gotOff := got.Zone()
			_, wantOff := tt.want.Zone()
			if gotOff != wantOff {
				t.Errorf("offset: got %d, want %d", gotOff, wantOff)
			}
		})
	}
}
