package depcheck

import "strings"

// Module is the module whose packages the rules govern.
const Module = "github.com/lockstep-dev/lockstep"

// A Rule says which of the module's directories the packages under From
// may import, besides their own subtree. The most specific rule (the
// longest From) governs a package; a package no rule covers may import
// anything (cmd/*, the tests' tools).
type Rule struct {
	From    string
	Allowed []string
	// Never lists directories that must not be reached even through
	// another package.
	Never []string
}

// Rules are DESIGN.md's "Which package may use which", exactly:
//
//	cmd/*        ->  anything below; flags and wiring only
//	ui           ->  localapi, protocol, version      never agent, platform or directory
//	agent/api    ->  localapi, the engine             the only agent package that knows localapi
//	agent/*      ->  platform, protocol
//	directory    ->  protocol, version;  directory/source/* -> protocol only
//	platform, protocol, version  ->  nothing of the project
//
// Inside agent, packages use each other (the daemon wires its parts, the
// engine writes the journal); "agent/*" bounds what they reach outside.
var Rules = []Rule{
	{From: "ui", Allowed: []string{"localapi", "protocol", "version"}, Never: []string{"agent", "platform", "directory"}},
	{From: "agent/api", Allowed: []string{"localapi", "agent", "platform", "protocol"}},
	{From: "agent", Allowed: []string{"agent", "platform", "protocol"}},
	{From: "directory", Allowed: []string{"protocol", "version"}},
	{From: "directory/source", Allowed: []string{"protocol"}},
	{From: "platform"},
	{From: "protocol"},
	{From: "version"},
}

// Package is what the rules need to know of a package.
type Package struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// Violation is a package reaching one it may not.
type Violation struct {
	Package, Imports string
	Rule             Rule
	Indirect         bool
}

func (v Violation) String() string {
	how := "imports"
	if v.Indirect {
		how = "depends on"
	}
	return rel(v.Package) + " " + how + " " + rel(v.Imports) + ": " + v.Rule.From + " may only use " + strings.Join(v.Rule.Allowed, ", ")
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, Module), "/") }

func under(path, dir string) bool {
	r := rel(path)
	return r == dir || strings.HasPrefix(r, dir+"/")
}

// ruleFor is the rule that governs pkg, if any.
func ruleFor(pkg string) (Rule, bool) {
	var best Rule
	found := false
	for _, r := range Rules {
		if under(pkg, r.From) && (!found || len(r.From) > len(best.From)) {
			best, found = r, true
		}
	}
	return best, found
}

// Check returns every import in pkgs that breaks the rules.
func Check(pkgs []Package) []Violation {
	var out []Violation
	for _, p := range pkgs {
		r, ok := ruleFor(p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, Module) || under(imp, r.From) {
				continue
			}
			allowed := false
			for _, a := range r.Allowed {
				allowed = allowed || under(imp, a)
			}
			// agent/api is the only agent package that knows localapi.
			if under(imp, "localapi") && under(p.ImportPath, "agent") && !under(p.ImportPath, "agent/api") {
				allowed = false
			}
			if !allowed {
				out = append(out, Violation{Package: p.ImportPath, Imports: imp, Rule: r})
			}
		}
		for _, d := range p.Deps {
			for _, n := range r.Never {
				if strings.HasPrefix(d, Module) && under(d, n) && !under(d, r.From) {
					out = append(out, Violation{Package: p.ImportPath, Imports: d, Rule: r, Indirect: true})
				}
			}
		}
	}
	return out
}
