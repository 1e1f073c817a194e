// Package patients keeps the gateway's demographics store: what the EPR's ADT messages say
// about each patient (date of birth, sex, ethnicity, current location), each value with the
// time it took effect, in a JetStream key-value bucket. A Stage consumes the raw ADT records
// that the HL7 v2 MLLP adapter stored, in stream order, and applies them; its Enrich fills in
// what an incident lacks, as at the time of the incident, so that the mapping can give the
// patient's age.
//
// Identifiers never leave this package in clear: bucket keys are hashes of the NHS number or
// of the source and local patient id, and nothing here logs an identifier or a value.
package patients

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"time"
)

// Bucket is the key-value bucket of the demographics store.
const Bucket = "psgw_patients"

// Bounds that keep one patient's entry small.
const (
	// MaxFacts is how many values of one attribute are kept; the oldest go first.
	MaxFacts = 16
	// MaxKeys is how many identifiers one patient's entry is kept under.
	MaxKeys = 32
)

// NHSKey is the bucket key of a patient's entry by NHS number.
func NHSKey(nhsNumber string) string {
	return "nhs_" + hashID("nhs", nhsNumber)
}

// LocalKey is the bucket key of a patient's entry by a local patient id in source's id space
// (the EPR feed's name, e.g. "epr").
func LocalKey(source, localID string) string {
	return "loc_" + hashID("local", source+"\x00"+localID)
}

func hashID(domain, id string) string {
	sum := sha256.Sum256([]byte("psgw-patient\x00" + domain + "\x00" + id))
	return hex.EncodeToString(sum[:16])
}

// Fact is one value of an attribute and the time it took effect (the ADT event time).
type Fact struct {
	Value string    `json:"v"`
	At    time.Time `json:"at"`
}

// Record is one patient's entry. The same entry is written under every key the patient is
// known by, so a lookup is one read. Each attribute is a history sorted by time, holding
// only changes.
type Record struct {
	Keys        []string  `json:"keys"`
	DateOfBirth []Fact    `json:"dob,omitempty"`
	Sex         []Fact    `json:"sex,omitempty"`
	Ethnicity   []Fact    `json:"ethnicity,omitempty"`
	Location    []Fact    `json:"location,omitempty"`
	LastSeq     uint64    `json:"last_seq"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Merges counts A40 merges folded into this entry.
	Merges int `json:"merges,omitempty"`
}

// Demographics are a patient's attributes as at one time. Empty means unknown.
type Demographics struct {
	DateOfBirth string `json:"date_of_birth,omitempty"`
	Sex         string `json:"sex,omitempty"`
	Ethnicity   string `json:"ethnicity,omitempty"`
	Location    string `json:"location,omitempty"`
}

// AsAt returns the patient's attributes in effect at t: for each, the latest value that took
// effect at or before t. Date of birth, sex and ethnicity describe the person rather than the
// stay, so when the store only heard of the patient after t, the earliest value it holds is
// the best evidence there is and is used. Location is strictly as at t.
func (r *Record) AsAt(t time.Time) Demographics {
	return Demographics{
		DateOfBirth: valueAt(r.DateOfBirth, t, true),
		Sex:         valueAt(r.Sex, t, true),
		Ethnicity:   valueAt(r.Ethnicity, t, true),
		Location:    valueAt(r.Location, t, false),
	}
}

func valueAt(facts []Fact, t time.Time, earliestIfNone bool) string {
	i := sort.Search(len(facts), func(i int) bool { return facts[i].At.After(t) })
	if i > 0 {
		return facts[i-1].Value
	}
	if earliestIfNone && len(facts) > 0 {
		return facts[0].Value
	}
	return ""
}

// addFact records that v took effect at at. A message that arrives late is put in its place
// in time; at one time the later message wins.
func addFact(facts []Fact, v string, at time.Time) []Fact {
	i := sort.Search(len(facts), func(i int) bool { return !facts[i].At.Before(at) })
	if i < len(facts) && facts[i].At.Equal(at) {
		facts[i].Value = v
	} else {
		facts = slices.Insert(facts, i, Fact{Value: v, At: at})
	}
	return compact(facts)
}

// unionFacts merges two histories of the same attribute.
func unionFacts(a, b []Fact) []Fact {
	out := append(append([]Fact(nil), a...), b...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return compact(out)
}

// compact drops values equal to the one before them (keeping when it first took effect)
// and the oldest values beyond MaxFacts.
func compact(facts []Fact) []Fact {
	out := facts[:0]
	for _, f := range facts {
		if n := len(out); n > 0 && out[n-1].Value == f.Value {
			continue
		}
		out = append(out, f)
	}
	if len(out) > MaxFacts {
		out = out[len(out)-MaxFacts:]
	}
	return out
}

// absorb folds other, another entry of the same patient, into r.
func (r *Record) absorb(other *Record) {
	r.DateOfBirth = unionFacts(r.DateOfBirth, other.DateOfBirth)
	r.Sex = unionFacts(r.Sex, other.Sex)
	r.Ethnicity = unionFacts(r.Ethnicity, other.Ethnicity)
	r.Location = unionFacts(r.Location, other.Location)
	r.addKeys(other.Keys...)
	r.LastSeq = max(r.LastSeq, other.LastSeq)
	r.Merges = max(r.Merges, other.Merges)
}

// absorbMerged folds prior, the entry an A40 merged into r's patient, into r. Where both have
// values for an attribute, r's (the surviving patient's) are kept; prior's history fills
// only what r lacks.
func (r *Record) absorbMerged(prior *Record) {
	fill := func(dst *[]Fact, src []Fact) {
		if len(*dst) == 0 {
			*dst = append([]Fact(nil), src...)
		}
	}
	fill(&r.DateOfBirth, prior.DateOfBirth)
	fill(&r.Sex, prior.Sex)
	fill(&r.Ethnicity, prior.Ethnicity)
	fill(&r.Location, prior.Location)
	r.addKeys(prior.Keys...)
	r.LastSeq = max(r.LastSeq, prior.LastSeq)
	r.Merges += prior.Merges + 1
}

func (r *Record) addKeys(keys ...string) {
	for _, k := range keys {
		if k != "" && !slices.Contains(r.Keys, k) && len(r.Keys) < MaxKeys {
			r.Keys = append(r.Keys, k)
		}
	}
}
