// Package envdoc reads the environment variables of a configuration struct
// from Go source: each go-envconfig `env:"NAME,default=…"` tag with the doc
// comment of its field, following the struct fields without a tag into the
// structs they name, across the packages of one module. It exists so that
// `exporter help` is generated from the code that reads the variables
// (see cmd/exporter/help.go) instead of a table kept beside it.
//
// Doc comments are not available at run time, hence source parsing. Only
// the standard library's go/ast is used: the generator runs in tests too.
package envdoc

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Var is one environment variable.
type Var struct {
	Name string
	// Default is the tag's default, "" when it has none.
	Default string
	// Doc is the first paragraph of the field's doc comment, as one line,
	// without the field's name as its subject ("Sinks are the …" reads
	// "The …") and without a sentence "Default X." that only repeats the
	// tag's default.
	// A field without a doc comment takes the one of the field before it
	// when that one names it ("RetryInitial, RetryMax and RetryMaxElapsed
	// shape …").
	Doc string
	// Field is where it is read, e.g. "Kafka.Brokers" (for error messages).
	Field string
}

// Extract returns the variables of the struct typeName declared in the
// package in dir, in field order, nested structs where they are named. Every
// tagged field must have a doc comment: the error names those without.
func Extract(dir, typeName string) ([]Var, error) {
	root, module, err := findModule(dir)
	if err != nil {
		return nil, err
	}
	x := &extractor{root: root, module: module, pkgs: map[string]*pkg{}, seen: map[string]int{}}
	p, err := x.load(dir)
	if err != nil {
		return nil, err
	}
	st, ok := p.structs[typeName]
	if !ok {
		return nil, fmt.Errorf("%s: no struct type %s", dir, typeName)
	}
	if err := x.walk(p, st, ""); err != nil {
		return nil, err
	}
	if len(x.missing) > 0 {
		return nil, fmt.Errorf("fields without a doc comment (help needs one for each variable): %s", strings.Join(x.missing, ", "))
	}
	return x.vars, nil
}

type pkg struct {
	dir     string
	structs map[string]typeDecl
}

type typeDecl struct {
	st      *ast.StructType
	imports map[string]string // file's import name → path
}

type extractor struct {
	root, module string
	pkgs         map[string]*pkg
	vars         []Var
	seen         map[string]int // name → index in vars
	missing      []string
}

func findModule(dir string) (root, module string, err error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
					return d, strings.Trim(strings.TrimSpace(m), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s/go.mod: no module line", d)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}

// load parses the package in dir (its non-test files).
func (x *extractor) load(dir string) (*pkg, error) {
	dir = filepath.Clean(dir)
	if p, ok := x.pkgs[dir]; ok {
		return p, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	p := &pkg{dir: dir, structs: map[string]typeDecl{}}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f.Name.Name, "_test") || hasIgnoreTag(f) {
			continue
		}
		imports := map[string]string{}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = path
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				if st, ok := ts.Type.(*ast.StructType); ok {
					p.structs[ts.Name.Name] = typeDecl{st: st, imports: imports}
				}
			}
		}
	}
	x.pkgs[dir] = p
	return p, nil
}

func hasIgnoreTag(f *ast.File) bool {
	for _, c := range f.Comments {
		if c.Pos() > f.Package {
			break
		}
		for _, l := range c.List {
			if strings.HasPrefix(l.Text, "//go:build") && strings.Contains(l.Text, "ignore") {
				return true
			}
		}
	}
	return false
}

func (x *extractor) walk(p *pkg, td typeDecl, path string) error {
	var shared *ast.CommentGroup // the last doc comment, for the fields after it without one
	for _, f := range td.st.Fields.List {
		if f.Doc != nil {
			shared = f.Doc
		}
		var tag string
		if f.Tag != nil {
			raw, err := strconv.Unquote(f.Tag.Value)
			if err != nil {
				return err
			}
			tag = reflect.StructTag(raw).Get("env")
		}
		names := fieldNames(f)
		if tag == "" {
			// go-envconfig descends into exported struct fields.
			if len(names) == 0 || !ast.IsExported(names[0]) {
				continue
			}
			sub, subPkg, err := x.resolve(p, td, f.Type)
			if err != nil {
				return fmt.Errorf("%s%s: %w", path, names[0], err)
			}
			if sub.st != nil {
				if err := x.walk(subPkg, sub, path+names[0]+"."); err != nil {
					return err
				}
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		var def string
		if _, d, ok := strings.Cut(opts, "default="); ok {
			def = d // the rest of the tag, commas and all: default is the last option
		}
		doc := f.Doc
		if doc == nil && shared != nil && len(names) > 0 && strings.Contains(shared.Text(), names[0]) {
			doc = shared
		}
		if doc == nil {
			doc = f.Comment
		}
		text := dropDefault(firstParagraph(doc), def)
		if len(names) > 0 {
			text = dropSubject(text, names[0])
		}
		field := path + strings.Join(names, ",")
		if text == "" {
			x.missing = append(x.missing, field+" ("+name+")")
		}
		if i, ok := x.seen[name]; ok {
			if x.vars[i].Default != def {
				return fmt.Errorf("%s is read by %s with default %q and by %s with default %q", name, x.vars[i].Field, x.vars[i].Default, field, def)
			}
			continue // documented where it was first read
		}
		x.seen[name] = len(x.vars)
		x.vars = append(x.vars, Var{Name: name, Default: def, Doc: text, Field: field})
	}
	return nil
}

func fieldNames(f *ast.Field) []string {
	if len(f.Names) > 0 {
		var out []string
		for _, n := range f.Names {
			out = append(out, n.Name)
		}
		return out
	}
	// Embedded: the type's name.
	switch t := f.Type.(type) {
	case *ast.Ident:
		return []string{t.Name}
	case *ast.SelectorExpr:
		return []string{t.Sel.Name}
	case *ast.StarExpr:
		return fieldNames(&ast.Field{Type: t.X})
	}
	return nil
}

// resolve finds the struct a field's type names: in this package, or in
// another package of the module. Types outside the module (time.Time) and
// types that are not structs resolve to nothing.
func (x *extractor) resolve(p *pkg, td typeDecl, t ast.Expr) (typeDecl, *pkg, error) {
	switch t := t.(type) {
	case *ast.Ident:
		return p.structs[t.Name], p, nil
	case *ast.StarExpr:
		// A pointer to a struct re-reads variables documented where the
		// struct itself is a field (the dead letters' *s3sink.Config).
		return typeDecl{}, nil, nil
	case *ast.SelectorExpr:
		id, ok := t.X.(*ast.Ident)
		if !ok {
			return typeDecl{}, nil, nil
		}
		path, ok := td.imports[id.Name]
		if !ok {
			return typeDecl{}, nil, fmt.Errorf("unknown package %s", id.Name)
		}
		rel, ok := strings.CutPrefix(path, x.module+"/")
		if !ok {
			return typeDecl{}, nil, nil
		}
		q, err := x.load(filepath.Join(x.root, filepath.FromSlash(rel)))
		if err != nil {
			return typeDecl{}, nil, err
		}
		return q.structs[t.Sel.Name], q, nil
	}
	return typeDecl{}, nil, nil
}

// firstParagraph is a doc comment's first paragraph as one line of prose:
// the user-facing part; later paragraphs may hold notes for maintainers.
func firstParagraph(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	para, _, _ := strings.Cut(strings.TrimSpace(g.Text()), "\n\n")
	return strings.Join(strings.Fields(para), " ")
}

// dropSubject turns "Sinks are the destinations" into "The
// destinations": a Go doc comment starts with the field's name, which help,
// listing the variable's name, does not need.
func dropSubject(text, field string) string {
	for _, verb := range []string{" is ", " are "} {
		if rest, ok := strings.CutPrefix(text, field+verb); ok && rest != "" {
			r, n := utf8.DecodeRuneInString(rest)
			return string(unicode.ToUpper(r)) + rest[n:]
		}
	}
	return text
}

// dropDefault removes a sentence "Default X." (X quoted or not) whose X is
// def: help shows the default beside the text already.
func dropDefault(text, def string) string {
	for _, d := range []string{def, strconv.Quote(def)} {
		for _, s := range []string{" Default " + d + ".", " Defaults to " + d + "."} {
			if i := strings.Index(text, s); i >= 0 && (i+len(s) == len(text) || text[i+len(s)] == ' ') {
				return strings.TrimSpace(text[:i] + text[i+len(s):])
			}
		}
	}
	return text
}

// Group is where v is read: its Field without the field's own name, ""
// for a field of the top struct ("Kafka" for "Kafka.Brokers").
func (v Var) Group() string {
	i := strings.LastIndex(v.Field, ".")
	if i < 0 {
		return ""
	}
	return v.Field[:i]
}

// Generate renders vars as the Go source of a file in package pkgName that
// declares `var varName = []T{{name, default, doc, group}, …}` where T is a
// struct of four strings named typeName.
func Generate(vars []Var, generator, pkgName, varName, typeName string) ([]byte, error) {
	if len(vars) == 0 {
		return nil, errors.New("no variables")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by %s; DO NOT EDIT.\n\n", generator)
	fmt.Fprintf(&b, "package %s\n\n", pkgName)
	fmt.Fprintf(&b, "// %s are the variables Config reads, from their fields' env tags and\n// doc comments, in field order.\n", varName)
	fmt.Fprintf(&b, "var %s = []%s{\n", varName, typeName)
	for _, v := range vars {
		fmt.Fprintf(&b, "\t{%q, %q, %q, %q},\n", v.Name, v.Default, v.Doc, v.Group())
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
