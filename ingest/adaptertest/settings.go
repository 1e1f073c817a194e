package adaptertest

import (
	"strings"
	"testing"

	"github.com/psgw/psgw/ingest"
)

// SettingsCase is one check of an adapter's Validate: the base settings, changed by Mutate,
// must give a problem containing Want, or none when Want is empty.
type SettingsCase[C any] struct {
	Name   string
	Mutate func(*C)
	Want   string
}

// CheckSettings runs each case on a fresh base() (the adapter's Defaults, with whatever turns
// it on) validated against shared. Problems name their keys in full, so Want should too
// ("mllp.read_timeout: must be ...").
func CheckSettings[C ingest.Settings](t *testing.T, base func() C, shared ingest.Shared, cases []SettingsCase[C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			c := base()
			tc.Mutate(&c)
			err := c.Validate(shared)
			switch {
			case tc.Want == "" && err != nil:
				t.Errorf("got %v, want no problem", err)
			case tc.Want != "" && (err == nil || !strings.Contains(err.Error(), tc.Want)):
				t.Errorf("got %v, want a problem containing %q", err, tc.Want)
			}
		})
	}
}
