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

// nopSettings is a section with no keys, always on.
type nopSettings struct{}

func (nopSettings) Enabled() bool                { return true }
func (nopSettings) Validate(ingest.Shared) error { return nil }

// kinds keeps each run's kinds and sections new, since the registry outlives a run under
// -count.
var kinds atomic.Int64

func newModule(prefix string) ingest.Module {
	n := kinds.Add(1)
	return ingest.Module{
		Kind:    fmt.Sprintf("%s-%d", prefix, n),
		Section: fmt.Sprintf("%s_section_%d", prefix, n),
		New:     func() ingest.Settings { return &nopSettings{} },
		Factory: nopFactory,
	}
}

func TestRegisterPanicsOnDuplicates(t *testing.T) {
	for name, dup := range map[string]func(ingest.Module) (ingest.Module, string){
		"section": func(m ingest.Module) (ingest.Module, string) {
			d := newModule("test-dup")
			d.Section = m.Section
			return d, m.Section
		},
		"kind": func(m ingest.Module) (ingest.Module, string) {
			d := newModule("test-dup")
			d.Kind = m.Kind
			return d, m.Kind
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := newModule("test-dup")
			ingest.Register(m)
			d, named := dup(m)
			defer func() {
				p := recover()
				if p == nil {
					t.Fatalf("second Register with the same %s: got no panic, want one", name)
				}
				if !strings.Contains(p.(string), named) {
					t.Errorf("panic %q does not name the %s %q", p, name, named)
				}
			}()
			ingest.Register(d)
		})
	}
}

func TestRegisterPanicsOnAnIncompleteModule(t *testing.T) {
	for name, mutate := range map[string]func(*ingest.Module){
		"no kind":     func(m *ingest.Module) { m.Kind = "" },
		"no section":  func(m *ingest.Module) { m.Section = "" },
		"no settings": func(m *ingest.Module) { m.New = nil },
		"no factory":  func(m *ingest.Module) { m.Factory = nil },
	} {
		t.Run(name, func(t *testing.T) {
			m := newModule("test-incomplete")
			mutate(&m)
			defer func() {
				if recover() == nil {
					t.Error("got no panic, want one")
				}
			}()
			ingest.Register(m)
		})
	}
}

func TestLookupAndModules(t *testing.T) {
	m := newModule("test-lookup")
	ingest.Register(m)
	got, ok := ingest.Lookup(m.Section)
	if !ok || got.Kind != m.Kind {
		t.Errorf("Lookup(%q): got %+v, %v, want kind %q", m.Section, got, ok, m.Kind)
	}
	if _, ok := ingest.Lookup(m.Kind); ok {
		t.Errorf("Lookup(%q), a kind and not a section: got a module", m.Kind)
	}
	if _, ok := ingest.Lookup("test-missing"); ok {
		t.Error("Lookup of an unknown section: got true")
	}
	found := false
	mods := ingest.Modules()
	for i, mod := range mods {
		found = found || mod.Kind == m.Kind
		if i > 0 && mods[i-1].Kind >= mod.Kind {
			t.Errorf("Modules() is not sorted by kind: %q before %q", mods[i-1].Kind, mod.Kind)
		}
	}
	if !found {
		t.Errorf("Modules() does not include %s", m.Kind)
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
