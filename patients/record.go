// Package patients keeps the gateway's demographics store: what the EPR's ADT messages say
// about each patient (date of birth, sex, ethnicity, current location), each value with the
// time it took effect, in a JetStream key-value bucket. A Stage consumes the raw ADT records
// that the HL7 v2 MLLP adapter stored, in stream order, and applies them; its Enrich fills in
// what an incident lacks, so that the mapping can give the patient's age: facts about the
// person as last corrected, facts about the stay as at the time of the incident (Record.AsAt).
//
// A local patient id is a patient's identity only together with the authority that issued it
// (PID-3 CX-4): entries are kept under (source, authority, id). Incidents name a patient by
// the id alone, so an alias entry per id lists the authorities that issued it; when two of
// them describe different people, the id is ambiguous and nothing is enriched from it.
//
// Identifiers never leave this package in clear but one way: bucket keys are hashes of the NHS
// number or of the source, authority and local patient id, and nothing here logs an
// identifier, a key or a value (a key is as good as the identifier: NHS numbers are few enough
// to try them all). The one way out is Enrich's answer: the names, local ids and dates of
// birth the store holds for an incident's patients, which the mapper removes from the
// incident's free text and keeps nowhere (docs/privacy.md, "Known identifiers").
package patients

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/psgw/psgw/fhir/privacy"
)

// Bucket is the key-value bucket of the demographics store.
const Bucket = "psgw_patients"

// Bounds that keep one patient's entry small.
const (
	// MaxFacts is how many values of one attribute are kept; the oldest go first.
	MaxFacts = 16
	// MaxKeys is how many identifiers one patient's entry is kept under.
	MaxKeys = 32
	// MaxIdentifiers is how many names, and how many local ids, one entry keeps for
	// redaction; the oldest go first.
	MaxIdentifiers = 16
)

// NHSKey is the bucket key of a patient's entry by NHS number.
func NHSKey(nhsNumber string) string {
	return nhsPrefix + hashID("nhs", nhsNumber)
}

// LocalKey is the bucket key of a patient's entry by a local patient id as issued by one
// assigning authority (PID-3 CX-4, "" when the message gives none) in source's feed (the EPR
// feed's name, e.g. "epr"). The same number from two authorities gives two keys: two merged
// trusts' hospital numbers, or a clinic number equal to an MRN, may be two people.
func LocalKey(source, authority, localID string) string {
	return localPrefix + hashID("local-authority", source+"\x00"+authority+"\x00"+localID)
}

// AliasKey is the bucket key of the alias entry of a local patient id without its authority, as
// incidents name patients (docs/api.md, "Ingest"). The entry lists the LocalKey of every authority
// that issued the id in source's feed; it holds no demographics.
func AliasKey(source, localID string) string {
	return aliasPrefix + hashID("local-alias", source+"\x00"+localID)
}

// Key prefixes. Entries under "loc_" were written by versions that keyed local ids without
// their authority; they are no longer read and expire with the bucket's TTL.
const (
	nhsPrefix   = "nhs_"
	localPrefix = "lca_"
	aliasPrefix = "lid_"
)

// entryKey reports whether k is a key that a patient's entry is kept under today.
func entryKey(k string) bool {
	return strings.HasPrefix(k, nhsPrefix) || strings.HasPrefix(k, localPrefix)
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
	Keys        []string `json:"keys"`
	DateOfBirth []Fact   `json:"dob,omitempty"`
	Sex         []Fact   `json:"sex,omitempty"`
	Ethnicity   []Fact   `json:"ethnicity,omitempty"`
	Location    []Fact   `json:"location,omitempty"`
	// Names and LocalIDs are the patient's names (PID-5) and local ids (PID-3, MRG-1) as
	// the EPR sent them, newest last, at most MaxIdentifiers each. They are kept only so that
	// mapping can remove them from incidents' free text (Record.Known); they expire with the
	// entry.
	Names     []string  `json:"names,omitempty"`
	LocalIDs  []string  `json:"local_ids,omitempty"`
	LastSeq   uint64    `json:"last_seq"`
	UpdatedAt time.Time `json:"updated_at"`
	// Merges counts A40 merges folded into this entry.
	Merges int `json:"merges,omitempty"`
	// Aliases link the alias entries of the patient's local ids to the LocalKeys the entry is
	// kept under, so that applying any update keeps those alias entries alive as long as the
	// entry itself.
	Aliases []Alias `json:"aliases,omitempty"`
}

// Alias links an AliasKey to one LocalKey of the same local id.
type Alias struct {
	Key    string `json:"k"`
	Target string `json:"t"`
}

// aliasEntry is the value kept under an AliasKey.
type aliasEntry struct {
	// Targets are LocalKeys of the id, one for each authority that issued it, oldest first.
	Targets []string `json:"targets"`
	// Incomplete is set once the list may lack an authority: more than MaxKeys issued the
	// id, or an unreadable alias entry was replaced. Such an id is never resolved.
	Incomplete bool `json:"incomplete,omitempty"`
}

// add adds target to the entry and reports whether the entry changed.
func (a *aliasEntry) add(target string) bool {
	if slices.Contains(a.Targets, target) {
		return false
	}
	if len(a.Targets) >= MaxKeys {
		changed := !a.Incomplete
		a.Incomplete = true
		return changed
	}
	a.Targets = append(a.Targets, target)
	return true
}

// Demographics are a patient's attributes as at one time. Empty means unknown.
type Demographics struct {
	DateOfBirth string `json:"date_of_birth,omitempty"`
	Sex         string `json:"sex,omitempty"`
	Ethnicity   string `json:"ethnicity,omitempty"`
	Location    string `json:"location,omitempty"`
}

// AsAt returns the patient's attributes for an incident at t.
//
// Date of birth, sex and ethnicity are facts about the person, not about the stay: a later
// value for them is a correction of the record (a PAS replacing a 1900-01-01 placeholder
// with the real date of birth, a sex or ethnic category entered wrongly), not a change that
// happened after the incident. So the latest value the store holds applies to every
// incident, whenever it happened, and a replay after the correction sends the corrected
// age (docs/mapping.md, "Demographics"). "Latest" is by the ADT event time, the time the
// EPR says the value took effect; at the same time the message applied last wins.
//
// Location describes the stay and is strictly as at t: the value in effect at t, or none.
func (r *Record) AsAt(t time.Time) Demographics {
	return Demographics{
		DateOfBirth: latest(r.DateOfBirth),
		Sex:         latest(r.Sex),
		Ethnicity:   latest(r.Ethnicity),
		Location:    valueAt(r.Location, t),
	}
}

// Known returns the identifiers of the patient that mapping removes from the free text of an
// incident about them (fhir.PrepareOptions): names, local ids and every date of birth the
// store has held, a corrected placeholder included.
func (r *Record) Known() privacy.Known {
	k := privacy.Known{Names: slices.Clone(r.Names), LocalIDs: slices.Clone(r.LocalIDs)}
	for _, f := range r.DateOfBirth {
		if f.Value != "" && !slices.Contains(k.BirthDates, f.Value) {
			k.BirthDates = append(k.BirthDates, f.Value)
		}
	}
	return k
}

// addIdentifiers adds values not yet in list, dropping the oldest beyond MaxIdentifiers.
func addIdentifiers(list []string, values ...string) []string {
	for _, v := range values {
		if v == "" {
			continue
		}
		if i := slices.Index(list, v); i >= 0 {
			list = slices.Delete(list, i, i+1) // seen again: now the newest
		}
		list = append(list, v)
	}
	if len(list) > MaxIdentifiers {
		list = slices.Clone(list[len(list)-MaxIdentifiers:])
	}
	return list
}

// latest is the value of the fact that took effect last.
func latest(facts []Fact) string {
	if len(facts) == 0 {
		return ""
	}
	return facts[len(facts)-1].Value
}

// valueAt is the latest value that took effect at or before t, or "".
func valueAt(facts []Fact, t time.Time) string {
	i := sort.Search(len(facts), func(i int) bool { return facts[i].At.After(t) })
	if i > 0 {
		return facts[i-1].Value
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
	r.Names = addIdentifiers(r.Names, other.Names...)
	r.LocalIDs = addIdentifiers(r.LocalIDs, other.LocalIDs...)
	r.addKeys(other.Keys...)
	r.addAliases(other.Aliases...)
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
	// Both records' names and ids may appear in text about the patient: keep them all.
	r.Names = addIdentifiers(slices.Clone(prior.Names), r.Names...)
	r.LocalIDs = addIdentifiers(slices.Clone(prior.LocalIDs), r.LocalIDs...)
	r.addKeys(prior.Keys...)
	r.addAliases(prior.Aliases...)
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

func (r *Record) addAliases(aliases ...Alias) {
	for _, a := range aliases {
		if a.Key != "" && a.Target != "" && !slices.Contains(r.Aliases, a) && len(r.Aliases) < MaxKeys {
			r.Aliases = append(r.Aliases, a)
		}
	}
}

// dropOldKeys forgets keys and aliases of a format no longer read (see the key prefixes), so
// that entries under them are not kept alive.
func (r *Record) dropOldKeys() {
	r.Keys = slices.DeleteFunc(r.Keys, func(k string) bool { return !entryKey(k) })
	r.Aliases = slices.DeleteFunc(r.Aliases, func(a Alias) bool {
		return !strings.HasPrefix(a.Key, aliasPrefix) || !strings.HasPrefix(a.Target, localPrefix)
	})
}
