package privacy

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package pure: standard library only, plus the one
// dependency direction fhir/taxonomy -> fhir/privacy.
func TestImports(t *testing.T) {
	// x/text/unicode/norm gives the compatibility decompositions the redactor reads text
	// through (normal.go).
	allowed := map[string]bool{"golang.org/x/text/unicode/norm": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !allowed[path] {
				t.Errorf("%s imports %s, want the standard library only", name, path)
			}
		}
	}
}
