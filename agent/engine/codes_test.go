package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lockstep-dev/lockstep/protocol/codes"
)

// Every text and error code the engine makes is in protocol/codes'
// registries (Texts, Errors), with only the parameters listed there: the
// registries are what ui/text renders, each code with each parameter set. The
// test reads the engine's source: each T(Code, "key", ...) call and each
// Error{Code: ..., Params: map[string]string{"key": ...}} literal.
func TestCodesAreRegistered(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := parser.ParseDir(fset, "../../protocol/codes", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{} // the engine's and protocol/codes' (as codes.X)
	var files []*ast.File
	for dir, set := range map[string]map[string]*ast.Package{"": pkgs, "codes.": vocab} {
		for _, p := range set {
			for _, f := range p.Files {
				if dir == "" {
					files = append(files, f)
				}
				for _, d := range f.Decls {
					g, ok := d.(*ast.GenDecl)
					if !ok || g.Tok != token.CONST {
						continue
					}
					for _, sp := range g.Specs {
						vs := sp.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if i < len(vs.Values) {
								if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
									consts[dir+n.Name], _ = strconv.Unquote(bl.Value)
								}
							}
						}
					}
				}
			}
		}
	}
	value := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.Ident:
			v, ok := consts[e.Name]
			return v, ok
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok && x.Name == "codes" {
				v, ok := consts["codes."+e.Sel.Name]
				return v, ok
			}
		case *ast.BasicLit:
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		}
		return "", false // a variable: checked where it is made
	}
	texts, errs := 0, 0
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); !ok || id.Name != "T" || len(n.Args) == 0 {
					return true
				}
				code, ok := value(n.Args[0])
				if !ok {
					return true
				}
				texts++
				want, known := codes.Texts[code]
				if !known {
					t.Errorf("%s: text code %q is not in Texts", fset.Position(n.Pos()), code)
				}
				for i := 1; i < len(n.Args); i += 2 {
					if k, ok := value(n.Args[i]); ok && !slices.Contains(want, k) {
						t.Errorf("%s: %s has parameter %q, not in Texts", fset.Position(n.Pos()), code, k)
					}
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); !ok || id.Name != "Error" {
					return true
				}
				var code string
				var keys []string
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch kv.Key.(*ast.Ident).Name {
					case "Code":
						if sel, ok := kv.Value.(*ast.SelectorExpr); ok && sel.X.(*ast.Ident).Name == "protocol" {
							code = "protocol." + sel.Sel.Name
						} else if v, ok := value(kv.Value); ok {
							code = v
						}
					case "Params":
						if m, ok := kv.Value.(*ast.CompositeLit); ok {
							for _, e := range m.Elts {
								if k, ok := value(e.(*ast.KeyValueExpr).Key); ok {
									keys = append(keys, k)
								}
							}
						}
					}
				}
				if code == "" || strings.HasPrefix(code, "protocol.") {
					return true // a variable, or a directory code passed through
				}
				errs++
				want, known := codes.Errors[code]
				if !known {
					t.Errorf("%s: error code %q is not in Errors", fset.Position(n.Pos()), code)
				}
				for _, k := range keys {
					if !slices.Contains(want, k) {
						t.Errorf("%s: error %s has parameter %q, not in Errors", fset.Position(n.Pos()), code, k)
					}
				}
			}
			return true
		})
	}
	if texts < 40 || errs < 15 {
		t.Fatalf("found only %d texts and %d errors: has the source changed shape?", texts, errs)
	}
}
