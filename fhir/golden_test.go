package fhir

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenNow is the clock of every golden case, so that "in the future" never drifts.
var goldenNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// GoldenCodeMaps are the code maps of the golden cases' sources (test/mapping uses them too).
var goldenCodeMaps = SourceCodeMaps{
	"datix": {
		"reporter.role":           {"*": {"RN": "5", "HCA": "1", "FY1": "4"}},
		"reporter.involvement":    {"*": {"WIT": "1", "TOLD": "2", "CARE": "4"}},
		"location.service_area":   {"*": {"ACUTE": "1", "MH": "4"}},
		"location.within_service": {"5": {"WARD": "4", "BADMAP": "99"}, "6": {"WARD": "4", "BADMAP": "99"}},
		"location.specialty":      {"*": {"CARDIO": "10"}},
		"patients.ethnicity":      {"*": {"WBRI": "11"}},
		"patients.sex":            {"6": {"female": "1", "male": "2"}},
		"process":                 {"*": {"TREAT": "6"}},
		"detection_point":         {"*": {"DIRECT": "4"}},
		"time_of_day":             {"*": {"DAY": "1", "NIGHT": "2"}},
		"agents.devices.type":     {"*": {"PUMP": "3"}},
	},
}

// goldenOptions tune one case: taxonomy version and age encoding (options.json).
type goldenOptions struct {
	Version     int    `json:"version"`
	AgeEncoding string `json:"age_encoding"`
}

// GoldenCase is one decoded testdata case.
type goldenCase struct {
	dir   string
	input []byte
	opt   goldenOptions
}

func loadGoldenCases(t testing.TB) []goldenCase {
	t.Helper()
	dirs, err := filepath.Glob("testdata/*/input.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var out []goldenCase
	for _, f := range dirs {
		dir := filepath.Dir(f)
		c := goldenCase{dir: dir, opt: goldenOptions{Version: 5}}
		if c.input, err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
		if raw, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
			if err := json.Unmarshal(raw, &c.opt); err != nil {
				t.Fatalf("%s/options.json: %v", dir, err)
			}
		}
		out = append(out, c)
	}
	return out
}

func (c goldenCase) builder() *Builder {
	return &Builder{Version: c.opt.Version, AgeEncoding: c.opt.AgeEncoding, Codes: NewCodeMaps(c.opt.Version, goldenCodeMaps)}
}

// run maps the case as the mapper does: parse, then prepare.
func (c goldenCase) run() (payload []byte, problems []Problem, warnings []Warning) {
	in, problems := ParseIncident(c.input, ParseOptions{Now: goldenNow})
	if len(problems) > 0 {
		return nil, problems, nil
	}
	prep := c.builder().Prepare(in)
	return prep.Payload, prep.Problems, prep.Warnings
}

// TestGolden maps every testdata/<case>/input.json and compares the payload with want.json,
// or the problems, one per line, with want.err, and the warnings, one per line, with
// want.warn (absent when there are none). go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	for _, c := range loadGoldenCases(t) {
		t.Run(filepath.Base(c.dir), func(t *testing.T) {
			payload, problems, warnings := c.run()
			checkGoldenWarnings(t, filepath.Join(c.dir, "want.warn"), warnings)
			wantJSON, wantErr := filepath.Join(c.dir, "want.json"), filepath.Join(c.dir, "want.err")
			var got []byte
			file, stale := wantJSON, wantErr
			if len(problems) > 0 {
				var b strings.Builder
				for _, p := range problems {
					b.WriteString(p.String() + "\n")
				}
				got = []byte(b.String())
				file, stale = wantErr, wantJSON
			} else {
				var buf bytes.Buffer
				if err := json.Indent(&buf, payload, "", "  "); err != nil {
					t.Fatal(err)
				}
				buf.WriteByte('\n')
				got = buf.Bytes()
			}
			if *update {
				os.Remove(stale)
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, err := os.Stat(stale); err == nil {
				t.Fatalf("%s exists, but the case gave %s", stale, filepath.Base(file))
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
			}
		})
	}
}

// checkGoldenWarnings compares warnings, one "field: message" per line, with file, which
// exists only when there are warnings.
func checkGoldenWarnings(t *testing.T, file string, warnings []Warning) {
	t.Helper()
	var b strings.Builder
	for _, w := range warnings {
		b.WriteString(w.String() + "\n")
	}
	got := b.String()
	if *update {
		os.Remove(file)
		if got != "" {
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
	}
}
