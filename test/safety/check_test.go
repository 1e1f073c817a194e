package safety

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// ciRun is what the CI script says about its test run.
type ciRun struct {
	text     string
	race     bool // go test -race: files built with the race tag
	short    bool // go test -short: tests skipped under testing.Short() do not run
	filtered bool // -run or -skip: the checker cannot tell which tests run
	partial  bool // a go test command without ./...: some packages may not be tested
}

var goTestLine = regexp.MustCompile(`(^|[;&|]\s*)go test\b(.*)`)

// readCI finds the go test commands of a CI script. Comment lines are ignored; a command is
// "go test" at the start of a line or after ; & or |.
func readCI(path string) (*ciRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ci := &ciRun{text: string(b)}
	n := 0
	for _, line := range strings.Split(ci.text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := goTestLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		if !slices.Contains(strings.Fields(m[2]), "./...") {
			ci.partial = true
		}
		for _, f := range strings.Fields(m[2]) {
			name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
			if !strings.HasPrefix(f, "-") {
				continue
			}
			switch name {
			case "race":
				ci.race = true
			case "short":
				ci.short = true
			case "run", "skip":
				ci.filtered = true
			}
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s runs no go test command", path)
	}
	return ci, nil
}

// testRef is a test named by the hazard log: import path, function and optional subtest.
var testRef = regexp.MustCompile(`^([A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*)\.((?:Test|Fuzz)[A-Za-z0-9_]*)(?:/(.+))?$`)

// checkLog runs every check on a hazard log against the repository at root: its entries
// (checkEntries), the CI script, and each test it names. With release set it also applies the
// release criteria of docs/safety/clinical-risk-management-plan.md: no hazard open and no
// residual risk above 3.
func checkLog(l *Log, root string, release bool) []string {
	p := problems(checkEntries(l, root))
	if release {
		for _, h := range l.Hazards {
			if h.Status == "open" {
				p.add("%s: release criteria: the hazard is open", h.ID)
			}
			if h.Residual.Risk > 3 {
				p.add("%s: release criteria: residual risk %d is above 3", h.ID, h.Residual.Risk)
			}
		}
	}
	if l.CI.Script == "" {
		p.add("ci.script is empty")
		return p
	}
	ci, err := readCI(filepath.Join(root, filepath.FromSlash(l.CI.Script)))
	if err != nil {
		p.add("ci: %v", err)
		return p
	}
	if ci.filtered {
		p.add("ci: %s passes -run or -skip to go test: which tests CI runs cannot be told from the hazard log's names", l.CI.Script)
	}
	if ci.partial {
		p.add("ci: a go test command of %s does not test ./...: a named test's package may not be run", l.CI.Script)
	}
	tr, err := loadTree(root, ciContext(ci.race))
	if err != nil {
		p.add("reading the Go files: %v", err)
		return p
	}
	provided := map[string]bool{}
	for i, pr := range l.CI.Provides {
		at := fmt.Sprintf("ci.provides[%d] (%s)", i, pr.Function)
		if strings.TrimSpace(pr.Condition) == "" || strings.TrimSpace(pr.Provided) == "" {
			p.add("%s: condition and provided must both say something", at)
		}
		if !tr.declares(pr.Function) {
			p.add("%s: no such function in the tree", at)
		}
		re, err := regexp.Compile(pr.Evidence)
		switch {
		case err != nil || pr.Evidence == "":
			p.add("%s: evidence %q is not a regular expression to look for in %s", at, pr.Evidence, l.CI.Script)
		case !re.MatchString(ci.text):
			p.add("%s: %s does not match %q, so CI does not provide for it", at, l.CI.Script, pr.Evidence)
		default:
			provided[pr.Function] = true
		}
	}
	c := evidenceChecker{tree: tr, ci: ci, provided: provided, root: root, seen: map[string][]string{}}
	for _, h := range l.Hazards {
		for _, ctl := range h.Controls {
			for _, ref := range ctl.Tests {
				for _, why := range c.check(ref) {
					p.add("%s: %s: %s", h.ID, ref, why)
				}
			}
		}
	}
	return p
}

// declares reports whether a qualified function name (import path, dot, name) is declared.
func (t *tree) declares(qualified string) bool {
	i := strings.LastIndex(qualified, ".")
	if i < 0 {
		return false
	}
	p := t.pkgs[qualified[:i]]
	return p != nil && len(p.funcs[qualified[i+1:]]) > 0
}

// evidenceChecker judges the tests the log names, each once.
type evidenceChecker struct {
	tree     *tree
	ci       *ciRun
	provided map[string]bool
	root     string
	seen     map[string][]string
}

// check says why ref is not evidence that runs in CI; nothing when it is.
func (c *evidenceChecker) check(ref string) []string {
	if why, ok := c.seen[ref]; ok {
		return why
	}
	why := c.judge(ref)
	c.seen[ref] = why
	return why
}

func (c *evidenceChecker) judge(ref string) []string {
	m := testRef.FindStringSubmatch(ref)
	if m == nil {
		return []string{"not a test name: want <import path>.<TestName>[/<subtest>]"}
	}
	path, name, sub := m[1], m[2], m[3]
	p := c.tree.pkgs[path]
	if p == nil {
		return []string{"no package " + path + " in the tree (or none of its files builds in CI)"}
	}
	d := p.tests[name]
	if d == nil {
		return []string{"no test function " + name + " in " + path}
	}
	var why []string
	if !p.runsTests() {
		why = append(why, "the package's TestMain never calls m.Run, so no test of it runs")
	}
	if sub != "" {
		for _, part := range strings.Split(sub, "/") {
			if !p.hasSubtest(part) {
				why = append(why, "no string literal in "+path+"'s tests names a subtest "+part)
			}
		}
	}
	for _, s := range c.tree.skips(d) {
		at := c.position(s)
		switch {
		case s.kind == skipAlways:
			why = append(why, "skipped unconditionally at "+at)
		case s.kind == skipShort && c.ci.short:
			why = append(why, "skipped in -short mode at "+at+", and CI runs go test -short")
		case s.kind == skipIf && !c.provided[s.guard]:
			why = append(why, "may be skipped in CI: at "+at+", under a condition in "+s.guard+" that ci.provides does not list")
		}
	}
	return why
}

func (c *evidenceChecker) position(s skipSite) string {
	rel, err := filepath.Rel(c.root, s.pos.Filename)
	if err != nil {
		rel = s.pos.Filename
	}
	return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), s.pos.Line)
}

// hasSubtest reports whether some string literal of the package's tests gives a subtest this
// name once go test has rewritten it (spaces become underscores).
func (p *pkg) hasSubtest(name string) bool {
	for lit := range p.literals {
		if strings.ReplaceAll(lit, " ", "_") == name {
			return true
		}
	}
	return false
}
