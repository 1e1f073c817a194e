package patients

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/queue"
)

// Enrich fills in each patient's missing date of birth, sex and ethnicity from the store: the
// latest value the store holds, however long after the incident it arrived, since these are
// facts about the person and a later value corrects the record (Record.AsAt). An incident
// mapped, or replayed, after a correction gets the corrected value. A patient is looked up by NHS
// number, then by local patient id; a local id that names more than one patient (see Lookup)
// enriches nothing and is counted in Status.AmbiguousLookups. Values the incident already has
// are never overwritten, and no identifier is added to the incident.
//
// It returns the identifiers the store holds for the incident's patients (Record.Known:
// names, local ids, dates of birth), for the mapper to remove from the incident's free text;
// for an ambiguous local id, those of every patient it may name. They must be used for that
// alone and kept nowhere. It implements the mapper's Enricher.
//
// rawSeq is the incident's sequence in the raw stream. Before looking up, Enrich waits, at
// most EnrichWait, until the stage has applied every ADT record stored before the incident,
// so that an incident posted right after an ADT message sees it. After the wait it goes on
// with what the store holds; nothing is lost, the incident is mapped either way. It does not
// wait for a stage that is not running and has not been for Options.DownWait.
//
// It returns an error (wrapping ErrStoreUnavailable) only when the store cannot be read now,
// so that the caller retries. An entry that cannot be decoded enriches nothing and is counted
// in Status.UnreadableEntries: retrying would not help.
func (s *Stage) Enrich(ctx context.Context, in *fhir.Incident, rawSeq uint64) (privacy.Known, error) {
	var known privacy.Known
	if in == nil || !namesPatients(in) {
		return known, nil
	}
	if s.opts.EnrichWait > 0 {
		if err := s.waitApplied(ctx, rawSeq); err != nil {
			return known, err
		}
	}
	s.mu.Lock()
	open := s.kv != nil
	s.mu.Unlock()
	if !open {
		// The stage is not running (yet): there is nothing to enrich from.
		return known, nil
	}
	at := incidentTime(in, s.opts.Now())
	enriched := false
	for i := range in.Patients {
		p := &in.Patients[i]
		if p.NHSNumber == "" && p.LocalPatientID == "" {
			continue
		}
		found, incomplete, err := s.candidates(ctx, p.NHSNumber, p.LocalPatientID)
		if err != nil {
			return known, err
		}
		for _, r := range found {
			known = mergeKnown(known, r.Known())
		}
		if !patientNeeds(p) {
			continue
		}
		d, ok, err := resolve(found, incomplete, at)
		if errors.Is(err, ErrAmbiguous) {
			// Guessing could give another patient's age and sex: the incident goes without.
			s.mu.Lock()
			s.status.AmbiguousLookups++
			s.mu.Unlock()
			s.log.Warn().Str("source", in.Source).Str("incident", in.LocalID).Int("patient", i).
				Msg("local patient id names more than one patient in the demographics store; patient not enriched")
			continue
		}
		if !ok {
			continue
		}
		if p.DateOfBirth == "" && d.DateOfBirth != "" && !dobAfter(d.DateOfBirth, at) {
			p.DateOfBirth, enriched = d.DateOfBirth, true
		}
		if p.Sex == "" && d.Sex != "" {
			p.Sex, enriched = d.Sex, true
		}
		if p.Ethnicity == "" && nhsEthnicCategory(d.Ethnicity) {
			p.Ethnicity, enriched = d.Ethnicity, true
		}
	}
	if enriched {
		s.mu.Lock()
		s.status.Enriched++
		s.mu.Unlock()
	}
	return known, nil
}

// mergeKnown adds b's identifiers to a's.
func mergeKnown(a, b privacy.Known) privacy.Known {
	a.NHSNumbers = append(a.NHSNumbers, b.NHSNumbers...)
	a.LocalIDs = append(a.LocalIDs, b.LocalIDs...)
	a.BirthDates = append(a.BirthDates, b.BirthDates...)
	a.Names = append(a.Names, b.Names...)
	return a
}

// Lookup returns the demographics of the patient with the given NHS number or local patient
// id (either may be empty) for an incident at t (Record.AsAt). The NHS number is tried first;
// after an A40 merge, the merged-away record's NHS number and ids name the surviving entry. A local id is issued by an
// assigning authority that the caller does not give: when more than one authority issued it
// to patients whose date of birth, sex or ethnicity differ as at t, Lookup returns
// ErrAmbiguous and nothing else. Where such patients agree on those, their location is given
// only if it agrees too.
func (s *Stage) Lookup(ctx context.Context, nhsNumber, localPatientID string, at time.Time) (Demographics, bool, error) {
	found, incomplete, err := s.candidates(ctx, nhsNumber, localPatientID)
	if err != nil {
		return Demographics{}, false, err
	}
	return resolve(found, incomplete, at)
}

// candidates returns the entries that the NHS number (first) or else the local id may name:
// one by NHS number, or one per distinct patient by local id. incomplete means the local id's
// alias entry cannot list them all.
func (s *Stage) candidates(ctx context.Context, nhsNumber, localID string) (found []*Record, incomplete bool, err error) {
	if nhsNumber != "" {
		r, err := s.get(ctx, NHSKey(nhsNumber))
		switch {
		case errors.Is(err, errUnreadableEntry):
			// As if absent (it is counted): the local id may still name the patient.
		case err != nil:
			return nil, false, err
		case r != nil:
			return []*Record{r}, false, nil
		}
	}
	if localID == "" {
		return nil, false, nil
	}
	entries, incomplete, err := s.patientsByLocalID(ctx, localID)
	if err != nil {
		return nil, false, err
	}
	for _, e := range entries {
		found = append(found, e.rec)
	}
	return found, incomplete, nil
}

// resolve is the demographics that candidates name as at t, or ErrAmbiguous (see Lookup).
func resolve(found []*Record, incomplete bool, at time.Time) (Demographics, bool, error) {
	switch {
	case incomplete:
		return Demographics{}, false, ErrAmbiguous
	case len(found) == 0:
		return Demographics{}, false, nil
	}
	d := found[0].AsAt(at)
	for _, f := range found[1:] {
		o := f.AsAt(at)
		if o.DateOfBirth != d.DateOfBirth || o.Sex != d.Sex || o.Ethnicity != d.Ethnicity {
			return Demographics{}, false, ErrAmbiguous
		}
		if o.Location != d.Location {
			d.Location = ""
		}
	}
	return d, true, nil
}

// waitApplied waits until every ADT record below rawSeq in the raw stream has been applied,
// the stage's EnrichWait passes, or ctx ends (the only error). While Run is not running, it
// waits only until the stage has been down for DownWait: a stage being restarted is waited
// for, one that is down is not.
func (s *Stage) waitApplied(ctx context.Context, rawSeq uint64) error {
	timer := time.NewTimer(s.opts.EnrichWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		started, running, downSince := s.started, s.running, s.downSince
		applied, changed, raw := s.applied, s.changed, s.raw
		s.mu.Unlock()
		if started {
			if applied+1 >= rawSeq {
				return nil
			}
			next, err := nextADT(ctx, raw, applied+1)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				s.log.Warn().Err(err).Msg("cannot tell whether ADT records are pending; enriching from the store as it is")
				return nil
			case next == 0 || next >= rawSeq:
				return nil // no ADT record waits before the incident
			}
		}
		var down <-chan time.Time
		var downTimer *time.Timer
		if !running {
			left := s.opts.DownWait - time.Since(downSince)
			if left <= 0 {
				s.mu.Lock()
				s.status.WaitsSkippedNotRunning++
				s.mu.Unlock()
				s.log.Debug().Msg("patients stage not running; enriching from the store as it is")
				return nil
			}
			downTimer = time.NewTimer(left)
			down = downTimer.C
		}
		select {
		case <-changed:
		case <-down:
		case <-timer.C:
			s.mu.Lock()
			s.status.WaitTimeouts++
			s.mu.Unlock()
			s.log.Warn().Dur("waited", s.opts.EnrichWait).Msg("demographics store still behind; enriching from it as it is")
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		if downTimer != nil {
			downTimer.Stop()
		}
	}
}

// nextADT returns the raw stream sequence of the first ADT record at or after seq, or 0 when
// there is none.
func nextADT(ctx context.Context, raw jetstream.Stream, seq uint64) (uint64, error) {
	m, err := raw.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(queue.RawSubject(ingest.KindADT, "*", "*")))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// namesPatients reports whether any of the incident's patients is named by an identifier the
// store may know: such an incident is looked up, for its demographics or for the identifiers
// to remove from its free text.
func namesPatients(in *fhir.Incident) bool {
	for i := range in.Patients {
		if p := &in.Patients[i]; p.NHSNumber != "" || p.LocalPatientID != "" {
			return true
		}
	}
	return false
}

func patientNeeds(p *fhir.Patient) bool {
	return (p.NHSNumber != "" || p.LocalPatientID != "") && (p.DateOfBirth == "" || p.Sex == "" || p.Ethnicity == "")
}

// incidentTime is the time the incident is looked up as at. A date without a time means the
// whole UK day (dates are UK dates, docs/mapping.md), so its end is used: an ADT message
// earlier that day counts.
func incidentTime(in *fhir.Incident, now time.Time) time.Time {
	for _, s := range []string{in.OccurredAt, in.ReportedAt} {
		if s == "" {
			continue
		}
		if t, err := fhir.ParseDateOrTime(s); err == nil {
			if len(s) == len(time.DateOnly) {
				y, m, d := t.Date()
				t = time.Date(y, m, d+1, 0, 0, 0, 0, fhir.UK).Add(-time.Nanosecond)
			}
			return t
		}
	}
	return now
}

// dobAfter reports whether dob cannot be used for an incident at at: unreadable, or a
// calendar date after the incident's (fhir.BornAfter, the rule the builder applies). Such a
// date is left out rather than supplied: an incident before the patient's birth (in
// pregnancy, recorded against the baby) has no age to give, and the builder would only warn.
func dobAfter(dob string, at time.Time) bool {
	t, err := fhir.ParseDate(dob)
	return err != nil || fhir.BornAfter(t, at)
}

// nhsEthnicCategory reports whether v is an NHS Data Dictionary ethnic category code, the
// only ethnicity values the mapping knows without a code map; anything else is left out
// rather than let the store's data quarantine an incident.
func nhsEthnicCategory(v string) bool {
	v = strings.ToUpper(v)
	if v == "99" {
		return true
	}
	return len(v) == 1 && strings.Contains("ABCDEFGHJKLMNPRSZ", v)
}
