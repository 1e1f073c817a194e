package patients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

// unappliableError is a record that can never be applied. Reason never holds patient data.
type unappliableError struct{ reason string }

func (e *unappliableError) Error() string { return e.reason }

// skipReason is the reason, fit for logs and the status page, that err makes a record
// unappliable.
func skipReason(err error) string {
	var u *unappliableError
	switch {
	case errors.As(err, &u):
		return u.reason
	case errors.Is(err, errUnreadableEntry):
		return "a stored patient entry it updates cannot be decoded"
	default:
		// Only this package's own code gets here; its error text is not known to be safe.
		return "internal error while applying the record"
	}
}

// applySafely is apply, with a panic (a bug) turned into an unappliable record, so that one
// record that triggers it does not stop the stage for ever.
func (s *Stage) applySafely(ctx context.Context, data []byte, seq uint64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			// The stack holds function names and argument words, not the record's content.
			s.log.Error().Uint64("seq", seq).Str("stack", string(debug.Stack())).Msg("panic while applying an ADT record")
			err = &unappliableError{"internal error while applying the record (panic)"}
		}
	}()
	if s.testHookApply != nil {
		s.testHookApply(data)
	}
	return s.apply(ctx, data, seq)
}

// apply applies one raw ADT record. It returns an error wrapping ErrStoreUnavailable when the
// store cannot be read or written now; any other error means the record can never be applied.
// Content that does not read as a supported ADT message is such a record: the adapter refuses
// those messages, so it can only come from an older or a foreign writer.
func (s *Stage) apply(ctx context.Context, data []byte, seq uint64) error {
	msg, err := hl7.Parse(data)
	var adt *hl7.ADT
	if err == nil {
		adt, err = hl7.ExtractADT(msg)
	}
	if err != nil {
		// hl7 errors name segments, fields and rules, never values.
		return &unappliableError{"not a supported ADT message: " + err.Error()}
	}
	keys, aliases := s.idsFor(adt.Patient)
	rec, err := s.loadMerged(ctx, keys)
	if err != nil {
		return err
	}
	if adt.MergedFrom != nil {
		priorKeys, priorAliases, err := s.priorIDs(ctx, *adt.MergedFrom)
		if err != nil {
			return err
		}
		prior, err := s.loadMerged(ctx, priorKeys)
		if err != nil {
			return err
		}
		prior.addKeys(priorKeys...)
		prior.addAliases(priorAliases...)
		rec.absorbMerged(prior)
	}
	at := adt.RecordedAt
	rec.Names = addIdentifiers(rec.Names, adt.Names...)
	rec.LocalIDs = addIdentifiers(rec.LocalIDs, localIDs(adt.Patient)...)
	if adt.MergedFrom != nil {
		rec.LocalIDs = addIdentifiers(rec.LocalIDs, localIDs(*adt.MergedFrom)...)
	}
	if adt.DateOfBirth != "" {
		rec.DateOfBirth = addFact(rec.DateOfBirth, adt.DateOfBirth, at)
	}
	if adt.Sex != "" {
		rec.Sex = addFact(rec.Sex, adt.Sex, at)
	}
	if adt.Ethnicity != "" {
		rec.Ethnicity = addFact(rec.Ethnicity, adt.Ethnicity, at)
	}
	switch {
	case adt.Discharged:
		rec.Location = addFact(rec.Location, "", at)
	case adt.Location != "":
		rec.Location = addFact(rec.Location, adt.Location, at)
	}
	rec.addKeys(keys...)
	rec.addAliases(aliases...)
	rec.dropOldKeys()
	rec.LastSeq = max(rec.LastSeq, seq)
	rec.UpdatedAt = s.opts.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	kv := s.bucket()
	for _, k := range rec.Keys {
		if _, err := kv.Put(ctx, k, b); err != nil {
			return fmt.Errorf("%w: writing patient entry: %w", ErrStoreUnavailable, err)
		}
	}
	// After the entry: an alias never names a key before the entry is there.
	for _, a := range rec.Aliases {
		if err := s.linkAlias(ctx, a); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.status.Applied++
	s.mu.Unlock()
	return nil
}

// localIDs are the local ids of p, as sent.
func localIDs(p hl7.PatientIDs) []string {
	out := make([]string, 0, len(p.LocalIDs))
	for _, l := range p.LocalIDs {
		out = append(out, l.ID)
	}
	return out
}

// idsFor returns the keys of a patient's entry named by p, and the aliases of its local ids.
func (s *Stage) idsFor(p hl7.PatientIDs) ([]string, []Alias) {
	var keys []string
	var aliases []Alias
	if p.NHSNumber != "" {
		keys = append(keys, NHSKey(p.NHSNumber))
	}
	for _, l := range p.LocalIDs {
		k := LocalKey(s.opts.Source, l.Authority, l.ID)
		keys = append(keys, k)
		aliases = append(aliases, Alias{Key: AliasKey(s.opts.Source, l.ID), Target: k})
	}
	return keys, aliases
}

// priorIDs is idsFor for the record an A40 merges (MRG-1). Interface engines often send MRG-1
// without the assigning authority: such an id is taken to mean the one patient the store
// knows by it. When more than one patient has it, it names none of them and is left out of
// the merge, rather than merge the wrong patient.
func (s *Stage) priorIDs(ctx context.Context, p hl7.PatientIDs) ([]string, []Alias, error) {
	var bare []string
	withAuthority := hl7.PatientIDs{NHSNumber: p.NHSNumber}
	for _, l := range p.LocalIDs {
		if l.Authority == "" {
			bare = append(bare, l.ID)
		} else {
			withAuthority.LocalIDs = append(withAuthority.LocalIDs, l)
		}
	}
	keys, aliases := s.idsFor(withAuthority)
	for _, id := range bare {
		found, incomplete, err := s.patientsByLocalID(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case incomplete || len(found) > 1:
			s.log.Warn().Msg("A40 names the merged record by a local id without authority that more than one patient has; not merged by that id")
			continue
		case len(found) == 1:
			keys = append(keys, found[0].key)
		default:
			// Not known yet: kept as an id without authority.
			k := LocalKey(s.opts.Source, "", id)
			keys = append(keys, k)
			aliases = append(aliases, Alias{Key: AliasKey(s.opts.Source, id), Target: k})
		}
	}
	return keys, aliases, nil
}

// loadMerged reads the entries under keys and folds them into one: they are all the same
// patient, seen through different identifiers.
func (s *Stage) loadMerged(ctx context.Context, keys []string) (*Record, error) {
	out := &Record{}
	for _, k := range keys {
		r, err := s.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out.absorb(r)
		}
	}
	return out, nil
}

// linkAlias makes the alias entry a.Key list a.Target, and rewrites it when it is old enough
// that the bucket's TTL might otherwise drop it before the entry it points to.
func (s *Stage) linkAlias(ctx context.Context, a Alias) error {
	kv := s.bucket()
	var entry aliasEntry
	fresh := false
	e, err := kv.Get(ctx, a.Key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("%w: reading alias entry: %w", ErrStoreUnavailable, err)
	default:
		if json.Unmarshal(e.Value(), &entry) != nil {
			// What it listed is lost: the id can no longer be resolved safely.
			entry = aliasEntry{Incomplete: true}
		}
		fresh = s.opts.MaxAge <= 0 || s.opts.Now().Sub(e.Created()) < s.opts.MaxAge/4
	}
	if !entry.add(a.Target) && fresh {
		return nil
	}
	b, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, a.Key, b); err != nil {
		return fmt.Errorf("%w: writing alias entry: %w", ErrStoreUnavailable, err)
	}
	return nil
}

// patientEntry is one patient's entry and the key it was read under.
type patientEntry struct {
	key string
	rec *Record
}

// patientsByLocalID returns the entries of the distinct patients that the local id, without
// authority, names: one per patient, however many of its authorities' keys the patient's
// entry is kept under. incomplete means the alias entry cannot list them all.
func (s *Stage) patientsByLocalID(ctx context.Context, localID string) (out []patientEntry, incomplete bool, err error) {
	kv := s.bucket()
	if kv == nil {
		return nil, false, errNotOpen
	}
	e, err := kv.Get(ctx, AliasKey(s.opts.Source, localID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: reading alias entry: %w", ErrStoreUnavailable, err)
	}
	var entry aliasEntry
	if json.Unmarshal(e.Value(), &entry) != nil {
		s.unreadable()
		return nil, true, nil
	}
next:
	for _, k := range entry.Targets {
		for _, f := range out {
			if slices.Contains(f.rec.Keys, k) {
				continue next // the same patient, by another authority's number
			}
		}
		r, err := s.get(ctx, k)
		if errors.Is(err, errUnreadableEntry) {
			// Whose it is cannot be told: the id cannot be resolved safely.
			entry.Incomplete = true
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if r != nil {
			out = append(out, patientEntry{key: k, rec: r})
		}
	}
	return out, entry.Incomplete, nil
}

func (s *Stage) bucket() jetstream.KeyValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kv
}

// get reads the patient entry under key: nil if there is none. Errors wrap
// ErrStoreUnavailable, or errUnreadableEntry when the entry cannot be decoded.
func (s *Stage) get(ctx context.Context, key string) (*Record, error) {
	kv := s.bucket()
	if kv == nil {
		return nil, errNotOpen
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading patient entry: %w", ErrStoreUnavailable, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		s.unreadable()
		return nil, errUnreadableEntry
	}
	return &r, nil
}

func (s *Stage) unreadable() {
	s.mu.Lock()
	s.status.UnreadableEntries++
	s.mu.Unlock()
	// Neither the key (as good as the identifier) nor the decoder's error (it may quote the
	// entry) is logged.
	s.log.Warn().Msg("an entry in the demographics store cannot be decoded")
}

var (
	errNotOpen         = fmt.Errorf("%w: not open yet", ErrStoreUnavailable)
	errUnreadableEntry = errors.New("stored patient entry cannot be decoded")
)
