// Package deploytest checks the deployment files under deploy/ without a
// cloud. It parses Terraform modules with hashicorp/hcl/v2 and evaluates
// their expressions (variables, locals, templatefile, outputs) the way
// Terraform does, with placeholder values for what only the cloud knows, and
// takes rendered cloud-init user data apart (files, systemd units, environment
// files, commands) so that tests can hand each piece to the real tools:
// promtool, amtool, systemd-analyze, bash and the tidepool binary.
//
// The evaluator covers the subset of Terraform the project's modules use:
// the functions in Functions, count and for_each by explicit placeholders,
// sensitivity as cty marks (Sensitive). It does not plan, resolve providers or
// check provider schemas; `terraform validate` would, but needs the providers
// from the Terraform registry.
//
// It owns the offline checks of deploy/; only tests may import it, and it must
// not import the components it checks beyond what their tests hand it.
package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// sensitiveMark is the type of Sensitive.
type sensitiveMark string

// Sensitive is the cty mark of values Terraform treats as sensitive: sensitive
// variables and provider attributes marked Sensitive (give placeholders for
// those with v.Mark(Sensitive)). Functions and templates carry marks into
// their results, as in Terraform.
const Sensitive = sensitiveMark("sensitive")

// Module is a parsed Terraform module: one directory's *.tf files.
type Module struct {
	// Dir is the module directory (path.module).
	Dir string
	// Files are the parsed .tf file names, sorted.
	Files     []string
	Variables map[string]*Variable
	Locals    map[string]hclsyntax.Expression
	// Resources and Data are keyed "TYPE.NAME".
	Resources map[string]*hclsyntax.Block
	Data      map[string]*hclsyntax.Block
	Outputs   map[string]*Output
	// Providers are the provider configuration blocks by provider name.
	Providers map[string]*hclsyntax.Block
	// Terraform holds the terraform {} blocks.
	Terraform []*hclsyntax.Block
}

// Variable is a variable block.
type Variable struct {
	Name        string
	Description string
	// Type is the type constraint; cty.DynamicPseudoType when there is none.
	Type cty.Type
	// Default is the default value; cty.NilVal when the variable is required.
	Default     cty.Value
	Sensitive   bool
	Validations []Validation
	Block       *hclsyntax.Block
}

// Validation is one validation block of a variable.
type Validation struct {
	Condition    hclsyntax.Expression
	ErrorMessage string
}

// Output is an output block.
type Output struct {
	Name        string
	Description string
	Value       hclsyntax.Expression
	Sensitive   bool
	Block       *hclsyntax.Block
}

// LoadModule parses every *.tf file in dir. It fails on syntax errors,
// duplicate names and variable or output blocks it cannot read (literal
// description, sensitive and default values, a valid type).
func LoadModule(dir string) (*Module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	slices.Sort(paths)
	m := &Module{
		Dir:       dir,
		Variables: map[string]*Variable{},
		Locals:    map[string]hclsyntax.Expression{},
		Resources: map[string]*hclsyntax.Block{},
		Data:      map[string]*hclsyntax.Block{},
		Outputs:   map[string]*Output{},
		Providers: map[string]*hclsyntax.Block{},
	}
	parser := hclparse.NewParser()
	for _, path := range paths {
		f, diags := parser.ParseHCLFile(path)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", path, diags)
		}
		m.Files = append(m.Files, filepath.Base(path))
		if err := m.add(f.Body.(*hclsyntax.Body)); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	return m, nil
}

func (m *Module) add(body *hclsyntax.Body) error {
	for name := range body.Attributes {
		return fmt.Errorf("unexpected top-level attribute %q", name)
	}
	for _, b := range body.Blocks {
		key := strings.Join(b.Labels, ".")
		switch b.Type {
		case "variable":
			v, err := readVariable(b)
			if err != nil {
				return err
			}
			if m.Variables[v.Name] != nil {
				return fmt.Errorf("variable %q declared twice", v.Name)
			}
			m.Variables[v.Name] = v
		case "locals":
			for name, a := range b.Body.Attributes {
				if m.Locals[name] != nil {
					return fmt.Errorf("local %q declared twice", name)
				}
				m.Locals[name] = a.Expr
			}
		case "resource", "data":
			set := m.Resources
			if b.Type == "data" {
				set = m.Data
			}
			if len(b.Labels) != 2 {
				return fmt.Errorf("%s block with labels %q: want TYPE NAME", b.Type, b.Labels)
			}
			if set[key] != nil {
				return fmt.Errorf("%s %q declared twice", b.Type, key)
			}
			set[key] = b
		case "output":
			o, err := readOutput(b)
			if err != nil {
				return err
			}
			if m.Outputs[o.Name] != nil {
				return fmt.Errorf("output %q declared twice", o.Name)
			}
			m.Outputs[o.Name] = o
		case "provider":
			m.Providers[key] = b
		case "terraform":
			m.Terraform = append(m.Terraform, b)
		default:
			return fmt.Errorf("unexpected block %s %q", b.Type, b.Labels)
		}
	}
	return nil
}

func readVariable(b *hclsyntax.Block) (*Variable, error) {
	if len(b.Labels) != 1 {
		return nil, fmt.Errorf("variable block with labels %q", b.Labels)
	}
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, Block: b}
	var err error
	if v.Description, err = literalString(b.Body, "description"); err != nil {
		return nil, fmt.Errorf("variable %s: %w", v.Name, err)
	}
	if v.Sensitive, err = literalBool(b.Body, "sensitive"); err != nil {
		return nil, fmt.Errorf("variable %s: %w", v.Name, err)
	}
	if a := b.Body.Attributes["type"]; a != nil {
		ty, diags := typeexpr.TypeConstraint(a.Expr)
		if diags.HasErrors() {
			return nil, fmt.Errorf("variable %s type: %w", v.Name, diags)
		}
		v.Type = ty
	}
	if a := b.Body.Attributes["default"]; a != nil {
		def, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("variable %s default: %w", v.Name, diags)
		}
		if v.Default, err = convert.Convert(def, v.Type); err != nil {
			return nil, fmt.Errorf("variable %s default does not match its type: %w", v.Name, err)
		}
	}
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			return nil, fmt.Errorf("variable %s: unexpected block %s", v.Name, vb.Type)
		}
		c := vb.Body.Attributes["condition"]
		if c == nil {
			return nil, fmt.Errorf("variable %s: validation without condition", v.Name)
		}
		msg, err := literalString(vb.Body, "error_message")
		if err != nil {
			return nil, fmt.Errorf("variable %s validation: %w", v.Name, err)
		}
		v.Validations = append(v.Validations, Validation{Condition: c.Expr, ErrorMessage: msg})
	}
	return v, nil
}

func readOutput(b *hclsyntax.Block) (*Output, error) {
	if len(b.Labels) != 1 {
		return nil, fmt.Errorf("output block with labels %q", b.Labels)
	}
	o := &Output{Name: b.Labels[0], Block: b}
	a := b.Body.Attributes["value"]
	if a == nil {
		return nil, fmt.Errorf("output %s has no value", o.Name)
	}
	o.Value = a.Expr
	var err error
	if o.Description, err = literalString(b.Body, "description"); err != nil {
		return nil, fmt.Errorf("output %s: %w", o.Name, err)
	}
	if o.Sensitive, err = literalBool(b.Body, "sensitive"); err != nil {
		return nil, fmt.Errorf("output %s: %w", o.Name, err)
	}
	return o, nil
}

// literalString is the constant string attribute name of body ("" if absent).
func literalString(body *hclsyntax.Body, name string) (string, error) {
	a := body.Attributes[name]
	if a == nil {
		return "", nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
		return "", fmt.Errorf("%s must be a literal string", name)
	}
	return v.AsString(), nil
}

// literalBool is the constant bool attribute name of body (false if absent).
func literalBool(body *hclsyntax.Body, name string) (bool, error) {
	a := body.Attributes[name]
	if a == nil {
		return false, nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.Bool || v.IsNull() {
		return false, fmt.Errorf("%s must be a literal bool", name)
	}
	return v.True(), nil
}

// Attr returns the attribute at path in body: zero or more nested block
// types, then the attribute name (the first nested block of each type).
func Attr(body *hclsyntax.Body, path ...string) (*hclsyntax.Attribute, bool) {
	for _, blockType := range path[:len(path)-1] {
		var next *hclsyntax.Body
		for _, b := range body.Blocks {
			if b.Type == blockType {
				next = b.Body
				break
			}
		}
		if next == nil {
			return nil, false
		}
		body = next
	}
	a, ok := body.Attributes[path[len(path)-1]]
	return a, ok
}

// Evaluation is a module evaluated for one set of inputs: an HCL evaluation
// context holding var, local, path, data and resource values.
type Evaluation struct {
	Module *Module
	// Ctx evaluates any expression of the module.
	Ctx *hcl.EvalContext
	// Locals are the evaluated locals.
	Locals map[string]cty.Value
}

// Evaluate evaluates the module's locals for inputs (variable values; missing
// ones take their defaults, and a missing required one is an error) and
// resources, the placeholder attribute values of resources and data sources,
// keyed "TYPE.NAME" or "data.TYPE.NAME" (an object, or a tuple of objects
// for count). Inputs are converted to their variable's type and sensitive
// variables are marked Sensitive. Variable validations are not run: see
// CheckVariable.
func (m *Module) Evaluate(inputs map[string]cty.Value, resources map[string]cty.Value) (*Evaluation, error) {
	vars := map[string]cty.Value{}
	for name := range inputs {
		if m.Variables[name] == nil {
			return nil, fmt.Errorf("input for undeclared variable %q", name)
		}
	}
	for name, v := range m.Variables {
		val, err := v.value(inputs)
		if err != nil {
			return nil, err
		}
		vars[name] = val
	}
	managed := map[string]map[string]cty.Value{}
	data := map[string]map[string]cty.Value{}
	for key, val := range resources {
		set, k := managed, key
		if rest, ok := strings.CutPrefix(key, "data."); ok {
			set, k = data, rest
		}
		typ, name, ok := strings.Cut(k, ".")
		if !ok {
			return nil, fmt.Errorf("resource placeholder %q: want TYPE.NAME or data.TYPE.NAME", key)
		}
		if set[typ] == nil {
			set[typ] = map[string]cty.Value{}
		}
		set[typ][name] = val
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":  cty.ObjectVal(vars),
			"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.Dir), "root": cty.StringVal(m.Dir)}),
			"data": objectOfObjects(data),
		},
		Functions: Functions(),
	}
	for typ, byName := range managed {
		ctx.Variables[typ] = cty.ObjectVal(byName)
	}
	e := &Evaluation{Module: m, Ctx: ctx, Locals: map[string]cty.Value{}}
	pending := map[string]hclsyntax.Expression{}
	for name, expr := range m.Locals {
		pending[name] = expr
	}
	for len(pending) > 0 {
		progress := false
		for name, expr := range pending {
			if !localsReady(expr, e.Locals) {
				continue
			}
			ctx.Variables["local"] = cty.ObjectVal(e.Locals)
			val, diags := expr.Value(ctx)
			if diags.HasErrors() {
				return nil, fmt.Errorf("local %s: %w", name, diags)
			}
			e.Locals[name] = val
			delete(pending, name)
			progress = true
		}
		if !progress {
			names := make([]string, 0, len(pending))
			for name := range pending {
				names = append(names, name)
			}
			slices.Sort(names)
			return nil, fmt.Errorf("locals %v refer to undeclared locals or to each other in a cycle", names)
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(e.Locals)
	return e, nil
}

func objectOfObjects(m map[string]map[string]cty.Value) cty.Value {
	out := map[string]cty.Value{}
	for k, v := range m {
		out[k] = cty.ObjectVal(v)
	}
	return cty.ObjectVal(out)
}

// localsReady reports whether every local.X that expr refers to is evaluated.
func localsReady(expr hclsyntax.Expression, done map[string]cty.Value) bool {
	for _, tr := range expr.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			continue
		}
		attr, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		if _, ok := done[attr.Name]; !ok {
			return false
		}
	}
	return true
}

func (v *Variable) value(inputs map[string]cty.Value) (cty.Value, error) {
	val, ok := inputs[v.Name]
	if !ok {
		if v.Default == cty.NilVal {
			return cty.NilVal, fmt.Errorf("variable %q is required and has no input", v.Name)
		}
		val = v.Default
	}
	val, err := convert.Convert(val, v.Type)
	if err != nil {
		return cty.NilVal, fmt.Errorf("variable %q: %w", v.Name, err)
	}
	if v.Sensitive {
		val = val.Mark(Sensitive)
	}
	return val, nil
}

// Value evaluates expr in the module's context, with extra top-level
// variables (such as each for a for_each resource).
func (e *Evaluation) Value(expr hcl.Expression, extra map[string]cty.Value) (cty.Value, error) {
	ctx := e.Ctx
	if len(extra) > 0 {
		ctx = ctx.NewChild()
		ctx.Variables = extra
	}
	val, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return val, nil
}

// CheckVariable runs the validations of variable name for value, as
// Terraform does before a plan, and returns the error message of the first
// one that fails, or nil.
func (m *Module) CheckVariable(name string, value cty.Value) error {
	v := m.Variables[name]
	if v == nil {
		return fmt.Errorf("no variable %q", name)
	}
	val, err := v.value(map[string]cty.Value{name: value})
	if err != nil {
		return err
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: val})},
		Functions: Functions(),
	}
	for _, vd := range v.Validations {
		res, diags := vd.Condition.Value(ctx)
		if diags.HasErrors() {
			return fmt.Errorf("variable %s: validation condition: %w", name, diags)
		}
		res, _ = res.Unmark()
		if res.Type() != cty.Bool || res.IsNull() || !res.IsKnown() {
			return fmt.Errorf("variable %s: validation condition is not a bool", name)
		}
		if res.False() {
			return errors.New(vd.ErrorMessage)
		}
	}
	return nil
}

// Functions returns the Terraform functions the evaluator supports:
// alltrue, can, cidrhost, endswith, floor, join, jsonencode, length, regex,
// replace (plain substrings only), sha256, templatefile, tonumber, toset and
// tostring. templatefile paths are used as given (Terraform resolves relative
// ones against the working directory; modules pass "${path.module}/...").
func Functions() map[string]function.Function {
	fns := map[string]function.Function{
		"alltrue":    allTrueFunc,
		"can":        tryfunc.CanFunc,
		"cidrhost":   cidrHostFunc,
		"endswith":   endsWithFunc,
		"floor":      stdlib.FloorFunc,
		"join":       stdlib.JoinFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"length":     stdlib.LengthFunc,
		"regex":      stdlib.RegexFunc,
		"replace":    stdlib.ReplaceFunc,
		"sha256":     sha256Func,
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":   stdlib.MakeToFunc(cty.String),
	}
	fns["templatefile"] = templateFileFunc(fns)
	return fns
}

// templateFileFunc is Terraform's templatefile(path, vars): the file is an
// HCL template evaluated with vars as its only variables and fns as its
// functions. Every variable the template uses must be in vars. Marks on vars
// carry over to the result.
func templateFileFunc(fns map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			vars := args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, fmt.Errorf("templatefile %s: vars must be an object or map, got %s", path, vars.Type().FriendlyName())
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, fmt.Errorf("templatefile: %w", err)
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, path, hcl.Pos{Line: 1, Column: 1, Byte: 0})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("templatefile %s: %w", path, diags)
			}
			given := vars.AsValueMap()
			for _, tr := range tmpl.Variables() {
				if _, ok := given[tr.RootName()]; !ok {
					return cty.NilVal, fmt.Errorf("templatefile %s:%d: vars has no key %q", path, tr.SourceRange().Start.Line, tr.RootName())
				}
			}
			val, diags := tmpl.Value(&hcl.EvalContext{Variables: given, Functions: fns})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("templatefile %s: %w", path, diags)
			}
			return val, nil
		},
	})
}

var sha256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sum := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

var endsWithFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "suffix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasSuffix(args[0].AsString(), args[1].AsString())), nil
	},
})

var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

// cidrHostFunc is cidrhost(prefix, hostnum) for hostnum 0..65535 (IPv4 or
// IPv6): the address hostnum steps into the prefix.
var cidrHostFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "prefix", Type: cty.String}, {Name: "hostnum", Type: cty.Number}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := netip.ParsePrefix(args[0].AsString())
		if err != nil {
			return cty.NilVal, fmt.Errorf("invalid CIDR expression: %w", err)
		}
		n, acc := args[1].AsBigFloat().Int64()
		if acc != 0 || n < 0 || n > 65535 {
			return cty.NilVal, fmt.Errorf("host number %s out of range", args[1].AsBigFloat())
		}
		addr := p.Masked().Addr()
		for range n {
			addr = addr.Next()
		}
		if !p.Contains(addr) {
			return cty.NilVal, fmt.Errorf("prefix %s has no host %d", p, n)
		}
		return cty.StringVal(addr.String()), nil
	},
})
