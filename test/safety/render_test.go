package safety

import (
	"fmt"
	"strings"
	"unicode"
)

// render writes the hazard log as people read it: docs/safety/hazard-log.md. Test names are
// shown without the module path, which every one of them starts with.
func render(l *Log, module string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	d := l.Document
	w("# %s\n\n", d.Title)
	w("<!-- Generated from hazard-log.yaml by test/safety: edit the YAML, then run\n")
	w("     go test ./test/safety -run TestHazardLogRendered -update -->\n\n")
	w("| | |\n|---|---|\n")
	w("| System | %s |\n| Issue | %s |\n| Date | %s |\n| Status | %s |\n| Approval | %s |\n\n", d.System, d.Issue, d.Date, d.Status, d.Approval)
	if d.Note != "" {
		w("%s\n\n", strings.TrimSpace(d.Note))
	}
	w("Ratings use the DCB0129 risk matrix of `clinical-risk-management-plan.md` (\"Risk matrix\"): ")
	w("likelihood × severity gives a clinical risk of 1 (acceptable) to 5 (unacceptable). ")
	w("Every test named below is checked by `TestHazardLog` (`test/safety`) to exist and to run in CI; ")
	w("names are shown without the module path `%s/`.\n\n", module)

	w("## Summary\n\n")
	w("| id | hazard | initial risk | residual risk | status | controls | tests |\n|---|---|---|---|---|---|---|\n")
	for _, h := range l.Hazards {
		tests := 0
		for _, c := range h.Controls {
			tests += len(c.Tests)
		}
		w("| [%s](#%s) | %s | %s | %s | %s | %d | %d |\n", h.ID, anchor(h), h.Title, short(h.Initial), short(h.Residual), h.Status, len(h.Controls), tests)
	}
	w("\n")

	w("## Skips that CI provides for\n\n")
	w("A named test may skip itself only under a condition CI is known to meet. `TestHazardLog` reads ")
	w("`%s` and checks each claim below against it.\n\n", l.CI.Script)
	w("| function | skips when | CI provides | checked in `%s` by |\n|---|---|---|---|\n", l.CI.Script)
	for _, p := range l.CI.Provides {
		w("| `%s` | %s | %s | `%s` |\n", strings.TrimPrefix(p.Function, module+"/"), oneLine(p.Condition), oneLine(p.Provided), p.Evidence)
	}
	w("\n")

	for _, h := range l.Hazards {
		w("## %s %s\n\n", h.ID, h.Title)
		w("%s\n\n", strings.TrimSpace(h.Description))
		w("**Causes**\n\n")
		for _, c := range h.Causes {
			w("- %s\n", oneLine(c))
		}
		w("\n**Effect on patients.** %s\n\n", oneLine(h.Effects.Patients))
		w("**Effect on national learning.** %s\n\n", oneLine(h.Effects.NationalLearning))
		w("**Initial risk:** %s\n\n", long(h.Initial))
		w("**Controls**\n\n")
		for i, c := range h.Controls {
			w("%d. *%s*: %s\n", i+1, c.Type, oneLine(c.Description))
			for _, t := range c.Tests {
				w("   - test `%s`\n", strings.TrimPrefix(t, module+"/"))
			}
			for _, doc := range c.Docs {
				w("   - document `%s`\n", doc)
			}
		}
		w("\n**Residual risk:** %s\n\n", long(h.Residual))
		if j := oneLine(h.Residual.Justification); j != "" {
			w("%s\n\n", j)
		}
		w("**Status:** %s\n\n", h.Status)
		if len(h.Open) > 0 {
			w("**Open**\n\n")
			for _, o := range h.Open {
				w("- %s\n", oneLine(o))
			}
			w("\n")
		}
		if len(h.Closed) > 0 {
			w("**Closed by**\n\n")
			for _, o := range h.Closed {
				w("- %s\n", oneLine(o))
			}
			w("\n")
		}
		if len(h.DCB0160) > 0 {
			w("**For the deploying organisation (DCB0160)**\n\n")
			for _, o := range h.DCB0160 {
				w("- %s\n", oneLine(o))
			}
			w("\n")
		}
	}
	return b.String()
}

func short(r Rating) string { return fmt.Sprintf("%d (%s × %s)", r.Risk, r.Likelihood, r.Severity) }

func long(r Rating) string {
	return fmt.Sprintf("likelihood %s, severity %s: **%d**", r.Likelihood, r.Severity, r.Risk)
}

// anchor is the GitHub anchor of a hazard's heading.
func anchor(h Hazard) string { return slug(h.ID + " " + h.Title) }

// slug is GitHub's anchor for a heading's text: lower case, spaces to hyphens, and every
// character but letters, digits, hyphens and underscores dropped ("## H-001 Lost, before"
// becomes "h-001-lost-before").
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine folds a YAML block into one Markdown line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// anchors lists the anchors of a Markdown file's headings (outside code fences), with
// GitHub's -1, -2 … suffixes for repeated ones.
func anchors(markdown string) map[string]bool {
	out := map[string]bool{}
	count := map[string]int{}
	fence := false
	for _, line := range strings.Split(markdown, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		text, ok := strings.CutPrefix(line, "#")
		if fence || !ok {
			continue
		}
		a := slug(strings.TrimSpace(strings.TrimLeft(text, "#")))
		if n := count[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		count[a]++
	}
	return out
}
