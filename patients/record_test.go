package patients

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func day(d int) time.Time { return time.Date(2025, 1, d, 12, 0, 0, 0, time.UTC) }

func TestAsAt(t *testing.T) {
	var r Record
	r.Sex = addFact(r.Sex, "female", day(10))
	r.Sex = addFact(r.Sex, "other", day(20))
	r.Sex = addFact(r.Sex, "female", day(5)) // late message, earlier effect: absorbed into the first
	r.Location = addFact(r.Location, "WARD7", day(10))
	r.Location = addFact(r.Location, "", day(15)) // discharged
	r.DateOfBirth = addFact(r.DateOfBirth, "1900-01-01", day(10))
	r.DateOfBirth = addFact(r.DateOfBirth, "1965-04-12", day(12)) // the placeholder corrected
	// Date of birth and sex as last corrected, whatever the date; location as at it.
	for _, tc := range []struct {
		at   time.Time
		want Demographics
	}{
		{day(1), Demographics{DateOfBirth: "1965-04-12", Sex: "other"}}, // before anything: no location
		{day(7), Demographics{DateOfBirth: "1965-04-12", Sex: "other"}},
		{day(11), Demographics{DateOfBirth: "1965-04-12", Sex: "other", Location: "WARD7"}},
		{day(16), Demographics{DateOfBirth: "1965-04-12", Sex: "other"}},
		{day(25), Demographics{DateOfBirth: "1965-04-12", Sex: "other"}},
	} {
		if diff := cmp.Diff(tc.want, r.AsAt(tc.at)); diff != "" {
			t.Errorf("as at %s (-want +got):\n%s", tc.at.Format(time.DateOnly), diff)
		}
	}
	if len(r.Sex) != 2 {
		t.Errorf("sex history: got %v, want two changes", r.Sex)
	}
	// A correction that arrives late but took effect earlier than the value it follows is not
	// the latest: the EPR's event times order the history.
	var late Record
	late.DateOfBirth = addFact(late.DateOfBirth, "1965-04-12", day(12))
	late.DateOfBirth = addFact(late.DateOfBirth, "1900-01-01", day(3))
	if got := late.AsAt(day(20)).DateOfBirth; got != "1965-04-12" {
		t.Errorf("late message with an earlier event time: got %s, want 1965-04-12", got)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	var facts []Fact
	for i := range 3 * MaxFacts {
		facts = addFact(facts, fmt.Sprint("WARD", i), day(1).Add(time.Duration(i)*time.Hour))
	}
	if len(facts) != MaxFacts {
		t.Fatalf("got %d facts, want %d", len(facts), MaxFacts)
	}
	if facts[len(facts)-1].Value != fmt.Sprint("WARD", 3*MaxFacts-1) {
		t.Errorf("newest fact lost: %v", facts[len(facts)-1])
	}
	var r Record
	for i := range 2 * MaxKeys {
		r.addKeys(fmt.Sprint("k", i))
	}
	if len(r.Keys) != MaxKeys {
		t.Errorf("keys: got %d, want %d", len(r.Keys), MaxKeys)
	}
}

func TestMergeKeepsTheSurvivorsValues(t *testing.T) {
	surv := &Record{Keys: []string{"a"}, Sex: []Fact{{"female", day(3)}}}
	prior := &Record{Keys: []string{"b"}, Sex: []Fact{{"male", day(1)}}, DateOfBirth: []Fact{{"1950-01-01", day(1)}}}
	surv.absorbMerged(prior)
	got := surv.AsAt(day(10))
	want := Demographics{Sex: "female", DateOfBirth: "1950-01-01"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, surv.Keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestKeysHoldNoIdentifier(t *testing.T) {
	for _, k := range []string{NHSKey("9434765919"), LocalKey("epr", "RGT", "RGT1234567"), AliasKey("epr", "RGT1234567")} {
		if len(k) != 36 {
			t.Errorf("key %q: got length %d, want 36", k, len(k))
		}
		for _, id := range []string{"9434765919", "RGT1234567"} {
			if contains(k, id) {
				t.Errorf("key %q holds an identifier", k)
			}
		}
	}
	for _, tc := range []struct{ name, a, b string }{
		{"two sources", LocalKey("epr", "RGT", "X"), LocalKey("pas", "RGT", "X")},
		{"two authorities", LocalKey("epr", "RGT", "X"), LocalKey("epr", "RXX", "X")},
		{"authority and id run together", LocalKey("epr", "RG", "TX"), LocalKey("epr", "RGT", "X")},
		{"alias and entry", AliasKey("epr", "X")[4:], LocalKey("epr", "", "X")[4:]},
		{"aliases of two sources", AliasKey("epr", "X"), AliasKey("pas", "X")},
	} {
		if tc.a == tc.b {
			t.Errorf("%s: keys collide", tc.name)
		}
	}
}

func TestAliasEntryNeverDropsAnAuthority(t *testing.T) {
	var a aliasEntry
	for i := range MaxKeys {
		if !a.add(fmt.Sprint("k", i)) {
			t.Fatalf("add %d: got unchanged, want changed", i)
		}
	}
	if a.add("k0") || a.Incomplete {
		t.Errorf("adding a known target: got %+v, want unchanged", a)
	}
	if !a.add("one-too-many") || !a.Incomplete || len(a.Targets) != MaxKeys {
		t.Errorf("one authority too many: got incomplete=%v with %d targets, want incomplete with %d", a.Incomplete, len(a.Targets), MaxKeys)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
