package safety

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const fixtureRoot = "testdata/tree"

// lineOf gives "file:line" of the first line of a fixture file that contains s.
func lineOf(t *testing.T, rel, s string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return rel + ":" + strconv.Itoa(i+1)
		}
	}
	t.Fatalf("%s holds no %q", rel, s)
	return ""
}

// TestCheckerOnFixtures runs the checker on a small tree (testdata/tree) and a log
// (testdata/log.yaml) naming a test of every kind: good ones, a renamed one, skipped ones,
// one excluded by a build constraint in CI's race build, one whose TestMain never runs it. It
// must name exactly the bad ones, and why; and with CI scripts that pass -short, filter tests
// by name or test only some packages, say so.
func TestCheckerOnFixtures(t *testing.T) {
	const mod = "example.com/fixture/"
	a := "a/a_test.go"
	mayBeSkipped := func(line, guard string) string {
		return "may be skipped in CI: at " + line + ", under a condition in " + mod + guard + " that ci.provides does not list"
	}
	common := []string{
		"ci.provides[1] (" + mod + "a.needThing): .ci/run does not match \"install thing\", so CI does not provide for it",
		"ci.provides[2] (" + mod + "a.gone): no such function in the tree",
		"H-001: " + mod + "a.TestRenamed: no test function TestRenamed in " + mod + "a",
		"H-001: " + mod + "a.TestAlwaysSkipped: skipped unconditionally at " + lineOf(t, a, `t.Skip("not written yet")`),
		"H-001: " + mod + "a.TestNotShort: " + mayBeSkipped(lineOf(t, a, `t.Skip("runs only in -short mode")`), "a.TestNotShort"),
		"H-001: " + mod + "a.TestEnv: " + mayBeSkipped(lineOf(t, a, `t.Skip("set FIXTURE_ON")`), "a.TestEnv"),
		"H-001: " + mod + "a.TestUnprovidedHelper: " + mayBeSkipped(lineOf(t, a, `t.Skipf("no thing`), "a.needThing"),
		"H-001: " + mod + "a.TestAlwaysSkippingHelper: skipped unconditionally at " + lineOf(t, a, "t.SkipNow()"),
		"H-001: " + mod + "a.TestSubtests/third: no string literal in " + mod + "a's tests names a subtest third",
		"H-001: " + mod + "a.TestSkippedSubtest: " + mayBeSkipped(lineOf(t, a, `t.Skip("later")`), "a.TestSkippedSubtest"),
		"H-001: " + mod + "a.BenchmarkThing: not a test name: want <import path>.<TestName>[/<subtest>]",
		"H-001: " + mod + "b.TestNotInRaceBuilds: no package " + mod + "b in the tree (or none of its files builds in CI)",
		"H-001: " + mod + "c.TestNeverRuns: the package's TestMain never calls m.Run, so no test of it runs",
		"H-001: " + mod + "nothere.TestX: no package " + mod + "nothere in the tree (or none of its files builds in CI)",
		"H-002: no control names a test that verifies it",
	}
	for _, tc := range []struct {
		script string
		extra  []string
	}{
		{".ci/run", nil},
		{".ci/run-short", []string{
			"H-001: " + mod + "a.TestShort: skipped in -short mode at " + lineOf(t, a, `t.Skip("slow")`) + ", and CI runs go test -short",
			"H-001: " + mod + "a.TestHelperUnderShort: skipped in -short mode at " + lineOf(t, a, "t.SkipNow()") + ", and CI runs go test -short",
		}},
		{".ci/run-filtered", []string{"ci: .ci/run-filtered passes -run or -skip to go test: which tests CI runs cannot be told from the hazard log's names"}},
		{".ci/run-subset", []string{"ci: a go test command of .ci/run-subset does not test ./...: a named test's package may not be run"}},
	} {
		t.Run(tc.script, func(t *testing.T) {
			l := mustLoad(t, "testdata/log.yaml")
			l.CI.Script = tc.script
			got := checkLog(l, fixtureRoot, false)
			want := append(slices.Clone(common), tc.extra...)
			if tc.script != ".ci/run" {
				// These scripts do not mention "install thing" either, and say need+=(widget).
				want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "ci.provides[1]") })
				want = append(want, "ci.provides[1] ("+mod+"a.needThing): "+tc.script+" does not match \"install thing\", so CI does not provide for it")
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHazardLogCatchesARenamedTest: the real hazard log over the real tree, with one of its
// tests renamed as a refactoring would rename it, fails with exactly that test named.
func TestHazardLogCatchesARenamedTest(t *testing.T) {
	l := mustLoad(t, logPath)
	before := checkLog(l, root, false)
	c := &l.Hazards[0].Controls[0]
	if len(c.Tests) == 0 {
		t.Fatalf("%s's first control names no test", l.Hazards[0].ID)
	}
	renamed := c.Tests[0] + "Renamed"
	c.Tests[0] = renamed
	got := checkLog(l, root, false)
	i := strings.LastIndex(renamed, ".")
	want := append(slices.Clone(before), l.Hazards[0].ID+": "+renamed+": no test function "+renamed[i+1:]+" in "+renamed[:i])
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestCheckEntries: what the log says of itself is checked before any code is read.
func TestCheckEntries(t *testing.T) {
	good := func() Hazard {
		return Hazard{
			ID: "H-001", Title: "t", Description: "d", Causes: []string{"c"},
			Effects:  Effects{Patients: "p", NationalLearning: "n"},
			Initial:  Rating{Likelihood: "high", Severity: "major", Risk: 4},
			Residual: Rating{Likelihood: "low", Severity: "major", Risk: 3, Justification: "j"},
			Status:   "controlled",
			Controls: []Control{{Type: "design", Description: "x", Tests: []string{"m/p.TestX"}, Docs: []string{"go.mod"}}},
		}
	}
	doc := Document{Title: "t", System: "s", Issue: "1", Date: "d", Status: "draft", Approval: "none"}
	for _, tc := range []struct {
		name  string
		edit  func(h *Hazard)
		wants []string
	}{
		{"good", func(h *Hazard) {}, nil},
		{"risk not the matrix's", func(h *Hazard) { h.Initial.Risk = 3 },
			[]string{"H-001: initial: risk 3, but the matrix gives 4 for high likelihood and major severity"}},
		{"off the scales", func(h *Hazard) { h.Residual.Severity = "serious" },
			[]string{`H-001: residual: likelihood "low" or severity "serious" is not on the scales (likelihood: very low, low, medium, high, very high; severity: minor, significant, considerable, major, catastrophic)`}},
		{"residual above initial", func(h *Hazard) {
			h.Residual = Rating{Likelihood: "very high", Severity: "catastrophic", Risk: 5, Justification: "j"}
		}, []string{"H-001: residual risk 5 is above the initial 4", "H-001: controlled with an unacceptable residual risk 5"}},
		{"unjustified", func(h *Hazard) { h.Residual.Justification = " " },
			[]string{"H-001: residual risk 3 is above acceptable and has no justification"}},
		{"open without saying what", func(h *Hazard) { h.Status = "open" },
			[]string{"H-001: open, but nothing says what is open"}},
		{"unknown status", func(h *Hazard) { h.Status = "closed" },
			[]string{`H-001: status "closed" is not one of open, controlled`}},
		{"no tested control", func(h *Hazard) { h.Controls[0].Tests = nil },
			[]string{"H-001: no control names a test that verifies it"}},
		{"bad control", func(h *Hazard) {
			h.Controls[0].Type, h.Controls[0].Docs = "hope", []string{"docs/nowhere.md", ".ci/run#no-such-heading"}
		}, []string{`H-001: controls[0]: type "hope" is not one of design, test, training, operational`,
			"H-001: controls[0]: document docs/nowhere.md does not exist",
			"H-001: controls[0]: document .ci/run has no heading with the anchor #no-such-heading"}},
		{"bad id and empty fields", func(h *Hazard) { h.ID, h.Title, h.Causes = "HAZ1", "", nil },
			[]string{`hazards[0]: id "HAZ1" is not of the form H-001`, "hazards[0]: title is empty", "hazards[0]: no cause"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.edit(&h)
			got := checkEntries(&Log{Document: doc, Hazards: []Hazard{h}}, fixtureRoot)
			if diff := cmp.Diff(tc.wants, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestMatrix pins the DCB0129 risk matrix (docs/safety/clinical-risk-management-plan.md) cell
// by cell, likelihood across severity, so that an edit to it is deliberate.
func TestMatrix(t *testing.T) {
	want := map[string]string{
		"very high": "3 4 4 5 5",
		"high":      "2 3 3 4 5",
		"medium":    "2 2 3 3 4",
		"low":       "1 2 2 3 4",
		"very low":  "1 1 2 2 3",
	}
	for l, row := range want {
		var got []string
		for _, s := range severities {
			r, ok := riskOf(l, s)
			if !ok {
				t.Fatalf("%s × %s is off the scales", l, s)
			}
			got = append(got, strconv.Itoa(r))
		}
		if g := strings.Join(got, " "); g != row {
			t.Errorf("%s likelihood: got %s, want %s (minor to catastrophic)", l, g, row)
		}
	}
}

// TestAnchors: headings become GitHub's anchors, repeats numbered, code fences skipped.
func TestAnchors(t *testing.T) {
	md := "# psgw hazard log\n## H-001 Lost, before `ack`: (202)\n```\n# not a heading\n```\n## Open\n### Open\n"
	got := anchors(md)
	for _, want := range []string{"psgw-hazard-log", "h-001-lost-before-ack-202", "open", "open-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line in a code fence was taken as a heading")
	}
}
