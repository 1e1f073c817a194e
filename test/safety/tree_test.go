package safety

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// tree is the Go code of one module as go test ./... sees it: every package directory below
// the root except testdata, directories starting with "." or "_", and nested modules, with
// only the files that build in the CI context.
type tree struct {
	module string
	fset   *token.FileSet
	pkgs   map[string]*pkg // by import path
	// memo holds each function's skip sites once computed (skips).
	memo map[*ast.FuncDecl][]skipSite
}

// pkg is one directory's files: the package and its external test package together, as go
// test runs them in one binary.
type pkg struct {
	path  string
	files []*file
	// funcs holds every function and method declared in the directory, by name; a method is
	// filed under its bare name, since the checker cannot tell receivers' types apart.
	funcs map[string][]*decl
	// tests holds the Test and Fuzz functions of the _test.go files, by name.
	tests map[string]*decl
	// literals holds the string literals of the _test.go files, to find subtest names.
	literals map[string]bool
}

type file struct {
	name    string
	ast     *ast.File
	imports map[string]string // local name → import path, for this module's packages only
}

type decl struct {
	pkg  *pkg
	file *file
	fn   *ast.FuncDecl
}

// qualified names a function as the hazard log does: import path, a dot, the name.
func (d *decl) qualified() string { return d.pkg.path + "." + d.fn.Name.Name }

// ciContext is the build context of CI's test run: Linux, cgo on, and the race tag when CI
// runs go test -race (a file constrained //go:build !race is then not compiled at all).
func ciContext(race bool) build.Context {
	ctx := build.Default
	ctx.GOOS = "linux"
	ctx.CgoEnabled = true
	ctx.BuildTags = nil
	if race {
		ctx.BuildTags = []string{"race"}
	}
	return ctx
}

// loadTree parses every Go file of the module rooted at root that builds in ctx.
func loadTree(root string, ctx build.Context) (*tree, error) {
	module, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	t := &tree{module: module, fset: token.NewFileSet(), pkgs: map[string]*pkg{}, memo: map[*ast.FuncDecl][]skipSite{}}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != root && err == nil {
				return filepath.SkipDir // a nested module: not part of ./...
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir, name := filepath.Split(path)
		if ok, err := ctx.MatchFile(dir, name); err != nil || !ok {
			return err
		}
		return t.add(root, path)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *tree) add(root, path string) error {
	f, err := parser.ParseFile(t.fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, filepath.Dir(path))
	if err != nil {
		return err
	}
	ipath := t.module
	if rel != "." {
		ipath += "/" + filepath.ToSlash(rel)
	}
	p := t.pkgs[ipath]
	if p == nil {
		p = &pkg{path: ipath, funcs: map[string][]*decl{}, tests: map[string]*decl{}, literals: map[string]bool{}}
		t.pkgs[ipath] = p
	}
	fl := &file{name: path, ast: f, imports: map[string]string{}}
	p.files = append(p.files, fl)
	for _, im := range f.Imports {
		ip, _ := strconv.Unquote(im.Path.Value)
		if ip != t.module && !strings.HasPrefix(ip, t.module+"/") {
			continue
		}
		local := ip[strings.LastIndex(ip, "/")+1:]
		if im.Name != nil {
			local = im.Name.Name
		}
		fl.imports[local] = ip
	}
	isTest := strings.HasSuffix(path, "_test.go")
	for _, dl := range f.Decls {
		fd, ok := dl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		d := &decl{pkg: p, file: fl, fn: fd}
		p.funcs[fd.Name.Name] = append(p.funcs[fd.Name.Name], d)
		if isTest && fd.Recv == nil && isTestName(fd.Name.Name) {
			p.tests[fd.Name.Name] = d
		}
	}
	if isTest {
		ast.Inspect(f, func(n ast.Node) bool {
			if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil {
					p.literals[s] = true
				}
			}
			return true
		})
	}
	return nil
}

// isTestName reports whether go test runs a function of this name without -bench or -fuzz:
// TestXxx, and FuzzXxx (its seed corpus), where Xxx does not start with a lower-case letter.
// TestMain is not a test.
func isTestName(name string) bool {
	for _, prefix := range []string{"Test", "Fuzz"} {
		if rest, ok := strings.CutPrefix(name, prefix); ok && name != "TestMain" {
			return rest == "" || !(rest[0] >= 'a' && rest[0] <= 'z')
		}
	}
	return false
}

func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", gomod)
}

// skipKind is what it takes for a skip to be reached, from least to most reassuring.
type skipKind int

const (
	// skipAlways: nothing stands between the test's start and the skip.
	skipAlways skipKind = iota
	// skipIf: a condition the checker cannot judge (an environment variable, a missing
	// binary, a loop, a closure): CI must be known to provide for it.
	skipIf
	// skipShort: only under testing.Short(), which CI does not set unless it passes -short.
	skipShort
)

func (k skipKind) String() string {
	return [...]string{"unconditionally", "under a condition", "in -short mode"}[k]
}

// skipSite is one way a test can end skipped: where the t.Skip call is, and the function whose
// condition guards it (the caller's when a helper skips unconditionally inside an if).
type skipSite struct {
	kind  skipKind
	guard string // qualified name of the function holding the condition
	pos   token.Position
}

// skips lists every skip reachable from d: t.Skip, t.Skipf and t.SkipNow calls in its body
// and, transitively, in the functions it calls. A call is followed when it names a function
// of the same package or of another package of this module (pkg.F), or a method of the same
// package by name (x.M follows every method M there, since types are not resolved). Calls
// through function values are not followed, and in a cycle of calls the function met again
// adds nothing the first visit does not.
func (t *tree) skips(d *decl) []skipSite {
	return t.walk(d, map[*ast.FuncDecl]bool{})
}

func (t *tree) walk(d *decl, inProgress map[*ast.FuncDecl]bool) []skipSite {
	if s, ok := t.memo[d.fn]; ok {
		return s
	}
	if inProgress[d.fn] {
		return nil
	}
	inProgress[d.fn] = true
	defer delete(inProgress, d.fn)
	var out []skipSite
	var visit func(n ast.Node, ctx skipKind)
	visit = func(n ast.Node, ctx skipKind) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.IfStmt:
				if n.Init != nil {
					visit(n.Init, ctx)
				}
				visit(n.Cond, ctx)
				inner := max(ctx, skipIf)
				if isTestingShort(n.Cond) {
					inner = skipShort
				}
				visit(n.Body, inner)
				if n.Else != nil {
					visit(n.Else, max(ctx, skipIf))
				}
				return false
			case *ast.CaseClause, *ast.CommClause, *ast.ForStmt, *ast.RangeStmt, *ast.FuncLit:
				if ctx < skipIf {
					visit(n, skipIf)
					return false
				}
			case *ast.CallExpr:
				if isSkipCall(n) {
					out = append(out, skipSite{kind: ctx, guard: d.qualified(), pos: t.fset.Position(n.Pos())})
				}
				for _, callee := range t.callees(d, n) {
					for _, s := range t.walk(callee, inProgress) {
						if ctx > s.kind {
							s.kind, s.guard = ctx, d.qualified()
						}
						out = append(out, s)
					}
				}
			}
			return true
		})
	}
	visit(d.fn.Body, skipAlways)
	t.memo[d.fn] = out
	return out
}

// isSkipCall matches x.Skip(…), x.Skipf(…) and x.SkipNow().
func isSkipCall(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	switch sel.Sel.Name {
	case "Skip", "Skipf", "SkipNow":
		return true
	}
	return false
}

// isTestingShort matches a condition that is exactly testing.Short(); anything else (a
// negation, a conjunction) is a condition the checker does not judge.
func isTestingShort(e ast.Expr) bool {
	if p, ok := e.(*ast.ParenExpr); ok {
		return isTestingShort(p.X)
	}
	c, ok := e.(*ast.CallExpr)
	if !ok || len(c.Args) != 0 {
		return false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "testing" && sel.Sel.Name == "Short"
}

// callees resolves a call to the declarations it may reach in this module.
func (t *tree) callees(from *decl, c *ast.CallExpr) []*decl {
	switch fn := c.Fun.(type) {
	case *ast.Ident:
		return functions(from.pkg.funcs[fn.Name])
	case *ast.SelectorExpr:
		if x, ok := fn.X.(*ast.Ident); ok {
			if ip, ok := from.file.imports[x.Name]; ok {
				if p := t.pkgs[ip]; p != nil {
					return functions(p.funcs[fn.Sel.Name])
				}
				return nil
			}
		}
		var ms []*decl
		for _, d := range from.pkg.funcs[fn.Sel.Name] {
			if d.fn.Recv != nil {
				ms = append(ms, d)
			}
		}
		return ms
	}
	return nil
}

func functions(ds []*decl) []*decl {
	var out []*decl
	for _, d := range ds {
		if d.fn.Recv == nil {
			out = append(out, d)
		}
	}
	return out
}

// runsTests reports whether a package's TestMain, if it has one, calls m.Run for its *testing.M
// parameter m: a TestMain that never does runs no test at all.
func (p *pkg) runsTests() bool {
	var tm *decl
	for _, d := range p.funcs["TestMain"] {
		if d.fn.Recv == nil && strings.HasSuffix(d.file.name, "_test.go") {
			tm = d
		}
	}
	if tm == nil {
		return true
	}
	params := tm.fn.Type.Params.List
	if len(params) != 1 || len(params[0].Names) != 1 {
		return false
	}
	m := params[0].Names[0].Name
	found := false
	ast.Inspect(tm.fn.Body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Run" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == m {
					found = true
				}
			}
		}
		return !found
	})
	return found
}

// sortedPaths lists the tree's import paths, for stable messages.
func (t *tree) sortedPaths() []string {
	var out []string
	for p := range t.pkgs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
