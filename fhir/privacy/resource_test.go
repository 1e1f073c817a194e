package privacy

import (
	"encoding/json"
	"reflect"
	"testing"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding test input: %v", err)
	}
	return m
}

func TestRedactResource(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string
		wantCount int
	}{
		{
			name:      "clean",
			in:        `{"description":"fell","n":9434765919,"b":true,"x":null}`,
			want:      `{"description":"fell","n":9434765919,"b":true,"x":null}`,
			wantCount: 0,
		},
		{
			name:      "nested strings and arrays",
			in:        `{"description":"NHS 9434765919","extension":[{"url":"S/x","extension":[{"url":"DrugsInvolved","valueString":"for 943 476 5919"}]}],"notes":["4010232137","ok"]}`,
			want:      `{"description":"NHS [REDACTED NHS NUMBER]","extension":[{"url":"S/x","extension":[{"url":"DrugsInvolved","valueString":"for [REDACTED NHS NUMBER]"}]}],"notes":["[REDACTED NHS NUMBER]","ok"]}`,
			wantCount: 3,
		},
		{
			name:      "url and valueCode are left alone",
			in:        `{"url":"9434765919","extension":[{"url":"X","valueCode":"9434765919"}]}`,
			want:      `{"url":"9434765919","extension":[{"url":"X","valueCode":"9434765919"}]}`,
			wantCount: 0,
		},
		{
			name:      "nested arrays",
			in:        `{"a":[["9434765919"],[{"b":"9434765919"}]]}`,
			want:      `{"a":[["[REDACTED NHS NUMBER]"],[{"b":"[REDACTED NHS NUMBER]"}]]}`,
			wantCount: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := decode(t, tt.in)
			if n := RedactResource(m); n != tt.wantCount {
				t.Errorf("got count %d, want %d", n, tt.wantCount)
			}
			if want := decode(t, tt.want); !reflect.DeepEqual(m, want) {
				got, _ := json.Marshal(m)
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRedactResourceNil(t *testing.T) {
	if n := RedactResource(nil); n != 0 {
		t.Errorf("got %d, want 0", n)
	}
}
