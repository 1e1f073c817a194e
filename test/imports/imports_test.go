package imports

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const mod = "github.com/psgw/psgw/"

// rule forbids the packages under from (the package itself or any below it) to depend on
// dep, directly or through another package.
type rule struct {
	from, dep string
	why       string
}

// rules are the boundaries of docs/architecture.md. The stages (mapper, patients, forwarder)
// sit side by side on the ledger and the queue; ops presents and decides nothing; the ledger
// and the queue know no stage.
var rules = []rule{
	{"mapper", "forwarder", "the mapper records in the ledger; delivery is the forwarder's alone"},
	{"mapper", "patients", "stages are side by side: the mapper sees the demographics store as an Enricher"},
	{"mapper", "ops", "a stage does not know how it is presented"},
	{"patients", "forwarder", "stages are side by side"},
	{"patients", "mapper", "stages are side by side"},
	{"patients", "ledger", "the demographics store keeps no delivery state"},
	{"forwarder", "mapper", "stages are side by side"},
	{"forwarder", "patients", "stages are side by side"},
	{"forwarder", "ops", "a stage does not know how it is presented"},
	{"ops", "forwarder", "ops presents the forwarder's status through ops.ForwarderReporter, wired by the gateway"},
	{"ops", "mapper", "ops replays through ops.Replayer, wired by the gateway"},
	{"ledger", "forwarder", "the ledger is below the stages"},
	{"ledger", "mapper", "the ledger is below the stages"},
	{"ledger", "patients", "the ledger is below the stages"},
	{"ledger", "ops", "the ledger is below its presentation"},
	{"ledger", "ingest", "the ledger knows incidents by key, not adapters"},
	{"queue", "ledger", "the queue is below the ledger: generic streams and buckets only"},
	{"ingest", "ledger", "adapters see the pipeline only through ingest.Publisher"},
	{"insights", "mapper", "the learning store is below the stages: the mapper writes it through mapper.Facts"},
	{"insights", "forwarder", "the learning store is below the stages: it follows states through the ledger"},
	{"insights", "patients", "the learning store is below the stages"},
	{"insights", "ops", "the learning store is below its presentation"},
	{"insights", "ingest", "the learning store knows incidents by key and coded answers, not adapters"},
	{"ledger", "insights", "the ledger knows no reader of its states: it reports them through ledger.Options.Observe"},
	{"queue", "insights", "the queue is below the learning store: generic streams and buckets only"},
}

// fileRule allows dep in package from only in the named file: the gateway wires every part,
// but knows the forwarder only to start its stage.
type fileRule struct {
	from, dep, file string
}

var fileRules = []fileRule{
	{"internal/gateway", "forwarder", "forwarder.go"},
}

// pkg is one package as go list describes it.
type pkg struct {
	path  string
	dir   string
	deps  []string
	files []string
}

func list(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-e",
		"-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .Deps \" \"}}\t{{join .GoFiles \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("go list line %q: want 4 tab-separated fields", line)
		}
		pkgs = append(pkgs, pkg{path: f[0], dir: f[1], deps: strings.Fields(f[2]), files: strings.Fields(f[3])})
	}
	return pkgs
}

// under reports whether path is the psgw package name or one below it.
func under(path, name string) bool {
	return path == mod+name || strings.HasPrefix(path, mod+name+"/")
}

// violations lists every rule pkgs break, one line each.
func violations(pkgs []pkg, rules []rule) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !under(p.path, r.from) {
				continue
			}
			for _, d := range p.deps {
				if under(d, r.dep) {
					out = append(out, p.path+" depends on "+d+": "+r.why)
				}
			}
		}
	}
	return out
}

// fileViolations lists every file of pkgs that imports a dependency its fileRule keeps to
// another file.
func fileViolations(t *testing.T, pkgs []pkg, rules []fileRule) []string {
	t.Helper()
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if p.path != mod+r.from {
				continue
			}
			for _, name := range p.files {
				if name == r.file {
					continue
				}
				f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.dir, name), nil, parser.ImportsOnly)
				if err != nil {
					t.Fatal(err)
				}
				for _, imp := range f.Imports {
					if path, _ := strconv.Unquote(imp.Path.Value); under(path, r.dep) {
						out = append(out, p.path+"/"+name+" imports "+path+": only "+r.file+" may, to start the stage")
					}
				}
			}
		}
	}
	return out
}

// TestBoundaries lists every psgw package with everything it depends on, transitively, and
// checks the rules; in internal/gateway it reads each file's imports.
func TestBoundaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	pkgs := list(t)
	for _, want := range []string{"ledger", "mapper", "ops", "forwarder", "patients", "internal/gateway"} {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.path == mod+want }) {
			t.Fatalf("go list did not list %s", want)
		}
	}
	for _, v := range violations(pkgs, rules) {
		t.Error(v)
	}
	for _, v := range fileViolations(t, pkgs, fileRules) {
		t.Error(v)
	}
}

// TestBoundariesCatchAnImport: the check reports an import that breaks a rule, directly or
// through another package, and passes one that breaks none, so that TestBoundaries passing
// means something.
func TestBoundariesCatchAnImport(t *testing.T) {
	pkgs := []pkg{
		{path: mod + "ops", deps: []string{mod + "ledger", mod + "mapper"}},
		{path: mod + "mapper", deps: []string{mod + "ledger", mod + "queue"}},
		{path: mod + "patients/store", deps: []string{mod + "forwarder/classify"}},
		{path: mod + "forwarderx", deps: []string{mod + "mapper"}},
	}
	got := violations(pkgs, rules)
	want := []string{
		mod + "ops depends on " + mod + "mapper: ops replays through ops.Replayer, wired by the gateway",
		mod + "patients/store depends on " + mod + "forwarder/classify: stages are side by side",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
