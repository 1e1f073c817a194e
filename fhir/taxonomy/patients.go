package taxonomy

// sequence is the PatientSequence of one patient-information extension.
type sequence struct {
	path  string // the PatientSequence field
	value int
	ok    bool // exactly one well-formed PatientSequence
}

// patientSequence extracts a patient-information extension's
// PatientSequence. Missing, repeated or malformed values are not reported
// here; the field checks do that.
func patientSequence(path string, obj map[string]any) sequence {
	s := sequence{path: joinKey(path, "PatientSequence")}
	inner, _ := obj["extension"].([]any)
	found := 0
	for _, e := range inner {
		iobj, _ := e.(map[string]any)
		if iobj["url"] != "PatientSequence" {
			continue
		}
		found++
		s.value, s.ok = integerValue(iobj["valueInteger"])
	}
	s.ok = s.ok && found == 1
	return s
}

// patientSequences checks that the patients of one resource are numbered
// 1..n, each number once: LFPSE tells patients apart by PatientSequence.
func (c *checker) patientSequences(seqs []sequence) {
	n := len(seqs)
	first := make(map[int]bool, n)
	for _, s := range seqs {
		if !s.ok {
			continue
		}
		switch {
		case s.value < 1 || s.value > n:
			c.ps.add(s.path, RulePatientSequence, "PatientSequence %d is outside 1..%d (one number per patient)", s.value, n)
		case first[s.value]:
			c.ps.add(s.path, RulePatientSequence, "PatientSequence %d is used more than once", s.value)
		default:
			first[s.value] = true
		}
	}
}

// sequenceField checks, for v6 where no taxonomy says so, that a
// patient-information extension has exactly one integer PatientSequence.
func (c *checker) sequenceField(path string, obj map[string]any) {
	inner, _ := obj["extension"].([]any)
	n := 0
	for _, e := range inner {
		if iobj, _ := e.(map[string]any); iobj["url"] == "PatientSequence" {
			n++
		}
	}
	p := joinKey(path, "PatientSequence")
	switch {
	case n == 0:
		c.ps.add(p, RuleRequired, "PatientSequence is required in patient-information-6")
	case n > 1:
		c.ps.add(p, RuleCardinality, "PatientSequence occurs %d times, at most 1 allowed", n)
	}
}
