// Command darwincheck type-checks a module's packages as they build for
// macOS with cgo (GOOS=darwin GOARCH=arm64 CGO_ENABLED=1) without an Apple
// SDK. A cross build with cgo off skips every `import "C"` file, and a cgo
// build needs clang and the SDK; so this lists the packages with `go list
// -e -deps -json` (which does not run cgo) and type-checks them with go/types
// in dependency order, with FakeImportC for packages that have cgo files
// (references to C.x are not checked; everything else is). Errors are
// reported for the main module's packages only; it exits 1 when there are any.
//
//	go run ./internal/tools/darwincheck [-C dir] [packages]   (default ./...)
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Module     *struct {
		Main      bool
		GoVersion string
	}
	Error *struct{ Err string }
}

func main() {
	dir := flag.String("C", ".", "run in this directory (the module to check)")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	n, err := check(*dir, patterns, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "darwincheck:", err)
		os.Exit(2)
	}
	if n > 0 {
		fmt.Fprintf(os.Stderr, "darwincheck: %d error(s) for darwin/arm64 with cgo\n", n)
		os.Exit(1)
	}
}

// check lists and type-checks patterns in dir, writing each error of the
// main module's packages to w, and returns how many there were.
func check(dir string, patterns []string, w io.Writer) (int, error) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-deps", "-json"}, patterns...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("go list: %v: %s", err, stderr.Bytes())
	}
	var pkgs []*listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, fmt.Errorf("go list output: %w", err)
		}
		pkgs = append(pkgs, &p)
	}

	fset := token.NewFileSet()
	checked := map[string]*types.Package{"unsafe": types.Unsafe}
	n := 0
	report := func(format string, a ...any) {
		n++
		fmt.Fprintf(w, format+"\n", a...)
	}
	for _, p := range pkgs { // -deps lists dependencies before their dependents
		if p.ImportPath == "unsafe" || p.ImportPath == "C" {
			continue
		}
		mine := p.Module != nil && p.Module.Main
		if p.Error != nil && mine && !strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
			report("%s: %s", p.ImportPath, p.Error.Err)
		}
		var files []*ast.File
		for _, name := range append(append([]string(nil), p.GoFiles...), p.CgoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				if mine {
					report("%v", err)
				}
				continue
			}
			files = append(files, f)
		}
		conf := types.Config{
			Importer:         importer(p, checked),
			FakeImportC:      len(p.CgoFiles) > 0,
			IgnoreFuncBodies: !mine,
			Sizes:            types.SizesFor("gc", "arm64"),
			Error: func(err error) {
				if mine {
					report("%v", err)
				}
			},
		}
		if mine && p.Module.GoVersion != "" {
			conf.GoVersion = "go" + p.Module.GoVersion
		}
		tp, _ := conf.Check(p.ImportPath, fset, files, nil)
		checked[p.ImportPath] = tp
	}
	return n, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// importer resolves p's imports (through its ImportMap, for vendored
// packages) to packages already checked.
func importer(p *listedPackage, checked map[string]*types.Package) types.Importer {
	return importerFunc(func(path string) (*types.Package, error) {
		if mapped, ok := p.ImportMap[path]; ok {
			path = mapped
		}
		if tp := checked[path]; tp != nil {
			return tp, nil
		}
		return nil, fmt.Errorf("%s: import %q not checked (missing from go list?)", p.ImportPath, path)
	})
}
