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
)

// Every text and error code the engine makes is in its registries (Texts,
// Errors), with only the parameters listed there: the registries are what
// agent/api's tests hold to the local API's, and what ui/text renders. The
// test reads the engine's source: each T(Code, "key", ...) call and each
// Error{Code: ..., Params: map[string]string{"key": ...}} literal.
func TestCodesAreRegistered(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	var files []*ast.File
	for _, p := range pkgs {
		for _, f := range p.Files {
			files = append(files, f)
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
								consts[n.Name], _ = strconv.Unquote(bl.Value)
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
				want, known := Texts[code]
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
						if sel, ok := kv.Value.(*ast.SelectorExpr); ok {
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
				want, known := Errors[code]
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
