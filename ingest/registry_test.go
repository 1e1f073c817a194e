package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/psgw/psgw/ingest"
)

type nopAdapter struct{}

func (nopAdapter) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func nopFactory(ingest.Deps) (ingest.Adapter, error) { return nopAdapter{}, nil }

// kinds keeps each run's kinds new, since the registry outlives a run under -count.
var kinds atomic.Int64

func newKind(prefix string) string { return fmt.Sprintf("%s-%d", prefix, kinds.Add(1)) }

func TestRegisterPanicsOnDuplicateKind(t *testing.T) {
	kind := newKind("test-dup")
	ingest.Register(kind, nopFactory)
	defer func() {
		p := recover()
		if p == nil {
			t.Fatal("second Register of the same kind: got no panic, want one")
		}
		if !strings.Contains(p.(string), kind) {
			t.Errorf("panic %q does not name the kind", p)
		}
	}()
	ingest.Register(kind, nopFactory)
}

func TestRegisterPanicsWithoutKindOrFactory(t *testing.T) {
	for name, fn := range map[string]func(){
		"no kind":    func() { ingest.Register("", nopFactory) },
		"no factory": func() { ingest.Register("test-nil", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("got no panic, want one")
				}
			}()
			fn()
		})
	}
}

func TestLookupAndKinds(t *testing.T) {
	kind := newKind("test-lookup")
	ingest.Register(kind, nopFactory)
	if _, ok := ingest.Lookup(kind); !ok {
		t.Error("Lookup of a registered kind: got false")
	}
	if _, ok := ingest.Lookup("test-missing"); ok {
		t.Error("Lookup of an unknown kind: got true")
	}
	found := false
	for _, k := range ingest.Kinds() {
		found = found || k == kind
	}
	if !found {
		t.Errorf("Kinds() = %v, want it to include %s", ingest.Kinds(), kind)
	}
}

func TestSettingsAs(t *testing.T) {
	type cfg struct{ A int }
	for _, tc := range []struct {
		name     string
		settings any
		want     cfg
		wantErr  bool
	}{
		{"nil", nil, cfg{}, false},
		{"value", cfg{A: 1}, cfg{A: 1}, false},
		{"pointer", &cfg{A: 2}, cfg{A: 2}, false},
		{"nil pointer", (*cfg)(nil), cfg{}, false},
		{"wrong type", "x", cfg{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.SettingsAs[cfg]("k", ingest.Deps{Settings: tc.settings})
			if (err != nil) != tc.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
