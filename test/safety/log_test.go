package safety

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Log is docs/safety/hazard-log.yaml.
type Log struct {
	Document Document `yaml:"document"`
	CI       CI       `yaml:"ci"`
	Hazards  []Hazard `yaml:"hazards"`
}

// Document is the log's document control: which issue of it this is and who approved it.
type Document struct {
	Title    string `yaml:"title"`
	System   string `yaml:"system"`
	Issue    string `yaml:"issue"`
	Date     string `yaml:"date"`
	Status   string `yaml:"status"`
	Approval string `yaml:"approval"`
	Note     string `yaml:"note"`
}

// CI says where CI's test run is written and which conditional skips it is known to meet.
type CI struct {
	// Script is the CI script, relative to the repository root (.ci/run).
	Script string `yaml:"script"`
	// Provides lists the functions that skip a test under a condition CI provides for.
	Provides []Provision `yaml:"provides"`
}

// Provision is one conditional skip that CI is known not to take: the function holding the
// skip (a test or a helper it calls), when it skips, how CI prevents that, and a regular
// expression that must match the CI script, so that the claim is checked, not just written.
type Provision struct {
	Function  string `yaml:"function"`
	Condition string `yaml:"condition"`
	Provided  string `yaml:"provided"`
	Evidence  string `yaml:"evidence"`
}

// Hazard is one entry of the log.
type Hazard struct {
	ID          string    `yaml:"id"`
	Title       string    `yaml:"title"`
	Description string    `yaml:"description"`
	Causes      []string  `yaml:"causes"`
	Effects     Effects   `yaml:"effects"`
	Initial     Rating    `yaml:"initial"`
	Controls    []Control `yaml:"controls"`
	Residual    Rating    `yaml:"residual"`
	Status      string    `yaml:"status"`
	// Open lists what is not yet controlled, with the issue that will control it.
	Open []string `yaml:"open"`
	// Closed lists what an issue has since controlled: the issue, and what it added.
	Closed []string `yaml:"closed"`
	// DCB0160 lists what the deploying organisation must assess for its own deployment.
	DCB0160 []string `yaml:"dcb0160"`
}

// Effects are a hazard's consequences, for patients and for national learning.
type Effects struct {
	Patients         string `yaml:"patients"`
	NationalLearning string `yaml:"national_learning"`
}

// Rating is a clinical risk estimate on the DCB0129 matrix
// (docs/safety/clinical-risk-management-plan.md, "Risk matrix").
type Rating struct {
	Likelihood    string `yaml:"likelihood"`
	Severity      string `yaml:"severity"`
	Risk          int    `yaml:"risk"`
	Justification string `yaml:"justification"`
}

// Control is one clinical risk control measure.
type Control struct {
	Type        string   `yaml:"type"`
	Description string   `yaml:"description"`
	Tests       []string `yaml:"tests"`
	Docs        []string `yaml:"docs"`
}

// The scales of docs/safety/clinical-risk-management-plan.md, lowest first.
var (
	likelihoods  = []string{"very low", "low", "medium", "high", "very high"}
	severities   = []string{"minor", "significant", "considerable", "major", "catastrophic"}
	controlTypes = []string{"design", "test", "training", "operational"}
	statuses     = []string{"open", "controlled"}
)

// matrix is the DCB0129 risk matrix: matrix[likelihood][severity], both indexes lowest first,
// giving the clinical risk rating 1 (acceptable) to 5 (unacceptable).
var matrix = [5][5]int{
	{1, 1, 2, 2, 3}, // very low
	{1, 2, 2, 3, 4}, // low
	{2, 2, 3, 3, 4}, // medium
	{2, 3, 3, 4, 5}, // high
	{3, 4, 4, 5, 5}, // very high
}

// riskOf looks a rating up on the matrix; ok is false for a name not on the scales.
func riskOf(likelihood, severity string) (risk int, ok bool) {
	l, s := slices.Index(likelihoods, likelihood), slices.Index(severities, severity)
	if l < 0 || s < 0 {
		return 0, false
	}
	return matrix[l][s], true
}

// loadLog reads and strictly decodes a hazard log: an unknown key is an error, so a misspelt
// "tests:" cannot make a control look untested, or tested, by accident.
func loadLog(path string) (*Log, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var l Log
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &l, nil
}

var hazardID = regexp.MustCompile(`^H-[0-9]{3}$`)

// checkEntries checks what the log says of itself, without looking at the code: every field
// filled in, ratings on the matrix, each hazard with a control that names a test, a residual
// risk above "acceptable" justified. root is the repository root, for the docs controls cite.
func checkEntries(l *Log, root string) []string {
	var p problems
	d := l.Document
	p.empty("document", "title", d.Title, "system", d.System, "issue", d.Issue, "date", d.Date, "status", d.Status, "approval", d.Approval)
	if len(l.Hazards) == 0 {
		p.add("the log holds no hazard")
	}
	seen := map[string]bool{}
	for i, h := range l.Hazards {
		at := h.ID
		if !hazardID.MatchString(h.ID) {
			at = fmt.Sprintf("hazards[%d]", i)
			p.add("%s: id %q is not of the form H-001", at, h.ID)
		}
		if seen[h.ID] {
			p.add("%s: id used twice", at)
		}
		seen[h.ID] = true
		p.empty(at, "title", h.Title, "description", h.Description, "effects.patients", h.Effects.Patients,
			"effects.national_learning", h.Effects.NationalLearning)
		if len(h.Causes) == 0 {
			p.add("%s: no cause", at)
		}
		p.rating(at+": initial", h.Initial)
		p.rating(at+": residual", h.Residual)
		if h.Residual.Risk > h.Initial.Risk {
			p.add("%s: residual risk %d is above the initial %d", at, h.Residual.Risk, h.Initial.Risk)
		}
		if h.Residual.Risk >= 3 && strings.TrimSpace(h.Residual.Justification) == "" {
			p.add("%s: residual risk %d is above acceptable and has no justification", at, h.Residual.Risk)
		}
		if !slices.Contains(statuses, h.Status) {
			p.add("%s: status %q is not one of %s", at, h.Status, strings.Join(statuses, ", "))
		}
		if h.Status == "open" && len(h.Open) == 0 {
			p.add("%s: open, but nothing says what is open", at)
		}
		if h.Status == "controlled" && h.Residual.Risk >= 4 {
			p.add("%s: controlled with an unacceptable residual risk %d", at, h.Residual.Risk)
		}
		tested := false
		for j, c := range h.Controls {
			cat := fmt.Sprintf("%s: controls[%d]", at, j)
			if !slices.Contains(controlTypes, c.Type) {
				p.add("%s: type %q is not one of %s", cat, c.Type, strings.Join(controlTypes, ", "))
			}
			if strings.TrimSpace(c.Description) == "" {
				p.add("%s: no description", cat)
			}
			tested = tested || len(c.Tests) > 0
			for _, doc := range c.Docs {
				p.doc(cat, root, doc)
			}
		}
		if !tested {
			p.add("%s: no control names a test that verifies it", at)
		}
	}
	return p
}

// problems collects what a check found, one sentence each.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// doc checks that a document a control cites exists and, for "file#anchor", has a heading
// with that anchor.
func (p *problems) doc(at, root, ref string) {
	file, anchor, _ := strings.Cut(ref, "#")
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	switch {
	case err != nil:
		p.add("%s: document %s does not exist", at, file)
	case anchor != "" && !anchors(string(b))[anchor]:
		p.add("%s: document %s has no heading with the anchor #%s", at, file, anchor)
	}
}

// empty adds a problem for each empty value of the key, value pairs given.
func (p *problems) empty(at string, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			p.add("%s: %s is empty", at, pairs[i])
		}
	}
}

func (p *problems) rating(at string, r Rating) {
	want, ok := riskOf(r.Likelihood, r.Severity)
	switch {
	case !ok:
		p.add("%s: likelihood %q or severity %q is not on the scales (likelihood: %s; severity: %s)",
			at, r.Likelihood, r.Severity, strings.Join(likelihoods, ", "), strings.Join(severities, ", "))
	case r.Risk != want:
		p.add("%s: risk %d, but the matrix gives %d for %s likelihood and %s severity", at, r.Risk, want, r.Likelihood, r.Severity)
	}
}
