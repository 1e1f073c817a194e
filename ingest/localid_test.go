package ingest_test

import (
	"strings"
	"testing"

	"github.com/psgw/psgw/ingest"
)

func TestLocalIDProblem(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // part of the problem; "" for none
	}{
		{"DX-1", ""},
		{"W12345", ""},
		{"INC/2024/00123", ""},
		{"12345", ""},
		{"9434765918", ""}, // ten digits failing Modulus 11: not an NHS number
		{"", "empty"},
		{"   ", "empty"},
		{"Mrs Jane Doe (NHS 9434765919) found on floor", "white space"},
		{"Jane Doe", "white space"},
		{"DX-1\tx", "white space"},
		{"9434765919", "NHS-number-shaped"},
		{"DX-943-476-5919", "NHS-number-shaped"},
		{"DX-1\x00", "control"},
		{"DX-\xff", "not valid text"},
		{strings.Repeat("x", 129), "longer than 128"},
		{strings.Repeat("x", 128), ""},
		{strings.Repeat("é", 128), ""}, // characters, as the contract counts, not bytes
		{strings.Repeat("é", 129), "longer than 128"},
	} {
		got := ingest.LocalIDProblem(tc.id)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("LocalIDProblem(%q): got %q, want %q", tc.id, got, tc.want)
		}
		if strings.Contains(got, tc.id) && tc.id != "" && strings.TrimSpace(tc.id) != "" {
			t.Errorf("LocalIDProblem(%q): the problem %q quotes the value", tc.id, got)
		}
	}
}
