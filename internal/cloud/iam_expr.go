// The CEL subset of IAM rule expressions: parsing and evaluation.

package cloud

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// The CEL subset evaluated in rule expressions: string, bool and list
// literals; the variable operation; == and != on strings and bools; `in` on
// lists; the methods startsWith, endsWith and contains on strings; !, && and
// || (left to right, short-circuit) and parentheses. Other variables
// (parameters, resources) parse but fail to evaluate, so a rule using them
// never decides (as Exoscale treats a rule whose expression is invalid).

type celKind int

const (
	kindStr celKind = iota
	kindBool
	kindList
)

type celValue struct {
	kind celKind
	s    string
	b    bool
	list []celValue
}

func celString(s string) celValue { return celValue{kind: kindStr, s: s} }
func celBoolean(b bool) celValue  { return celValue{kind: kindBool, b: b} }

func (v celValue) equal(w celValue) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case kindStr:
		return v.s == w.s
	case kindBool:
		return v.b == w.b
	}
	return slices.EqualFunc(v.list, w.list, celValue.equal)
}

// celExpr is a parsed expression.
type celExpr interface {
	eval(vars map[string]celValue) (celValue, error)
}

type (
	celLit  struct{ v celValue }
	celVar  struct{ path []string }
	celList struct{ items []celExpr }
	celNot  struct{ x celExpr }
	celBin  struct {
		op   string
		l, r celExpr
	}
	celCall struct {
		recv   celExpr
		method string
		arg    celExpr
	}
)

func (e celLit) eval(map[string]celValue) (celValue, error) { return e.v, nil }

func (e celVar) eval(vars map[string]celValue) (celValue, error) {
	if len(e.path) == 1 {
		if v, ok := vars[e.path[0]]; ok {
			return v, nil
		}
	}
	return celValue{}, fmt.Errorf("no such attribute %s", strings.Join(e.path, "."))
}

func (e celList) eval(vars map[string]celValue) (celValue, error) {
	out := celValue{kind: kindList}
	for _, it := range e.items {
		v, err := it.eval(vars)
		if err != nil {
			return celValue{}, err
		}
		out.list = append(out.list, v)
	}
	return out, nil
}

func (e celNot) eval(vars map[string]celValue) (celValue, error) {
	v, err := e.x.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	if v.kind != kindBool {
		return celValue{}, errors.New("! needs a bool")
	}
	return celBoolean(!v.b), nil
}

func (e celBin) eval(vars map[string]celValue) (celValue, error) {
	l, err := e.l.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	if e.op == "&&" || e.op == "||" {
		if l.kind != kindBool {
			return celValue{}, fmt.Errorf("%s needs bools", e.op)
		}
		if (e.op == "&&" && !l.b) || (e.op == "||" && l.b) {
			return l, nil
		}
		r, err := e.r.eval(vars)
		if err != nil {
			return celValue{}, err
		}
		if r.kind != kindBool {
			return celValue{}, fmt.Errorf("%s needs bools", e.op)
		}
		return r, nil
	}
	r, err := e.r.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	switch e.op {
	case "==":
		return celBoolean(l.equal(r)), nil
	case "!=":
		return celBoolean(!l.equal(r)), nil
	case "in":
		if r.kind != kindList {
			return celValue{}, errors.New("in needs a list on its right")
		}
		return celBoolean(slices.ContainsFunc(r.list, l.equal)), nil
	}
	return celValue{}, fmt.Errorf("unknown operator %s", e.op)
}

func (e celCall) eval(vars map[string]celValue) (celValue, error) {
	recv, err := e.recv.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	arg, err := e.arg.eval(vars)
	if err != nil {
		return celValue{}, err
	}
	if recv.kind != kindStr || arg.kind != kindStr {
		return celValue{}, fmt.Errorf("%s needs strings", e.method)
	}
	switch e.method {
	case "startsWith":
		return celBoolean(strings.HasPrefix(recv.s, arg.s)), nil
	case "endsWith":
		return celBoolean(strings.HasSuffix(recv.s, arg.s)), nil
	default: // contains
		return celBoolean(strings.Contains(recv.s, arg.s)), nil
	}
}

// parseExpr parses a rule expression of the CEL subset above.
func parseExpr(src string) (celExpr, error) {
	toks, err := celLex(src)
	if err != nil {
		return nil, err
	}
	p := &celParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return e, nil
}

type celTok struct {
	kind byte // 'i' identifier, 's' string, 'o' operator or punctuation
	text string
}

func celLex(src string) ([]celTok, error) {
	var toks []celTok
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			j := i + 1
			var sb strings.Builder
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				sb.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, celTok{'s', sb.String()})
			i = j + 1
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j]))) {
				j++
			}
			toks = append(toks, celTok{'i', src[i:j]})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch {
			case two == "==" || two == "!=" || two == "&&" || two == "||":
				toks = append(toks, celTok{'o', two})
				i += 2
			case strings.ContainsRune("()[],.!", rune(c)):
				toks = append(toks, celTok{'o', string(c)})
				i++
			default:
				return nil, fmt.Errorf("unexpected character %q", c)
			}
		}
	}
	return toks, nil
}

type celParser struct {
	toks []celTok
	pos  int
}

func (p *celParser) peek(text string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind != 's' && p.toks[p.pos].text == text
}

func (p *celParser) expect(text string) error {
	if !p.peek(text) {
		return fmt.Errorf("want %q", text)
	}
	p.pos++
	return nil
}

func (p *celParser) or() (celExpr, error) {
	l, err := p.and()
	for err == nil && p.peek("||") {
		p.pos++
		var r celExpr
		if r, err = p.and(); err == nil {
			l = celBin{"||", l, r}
		}
	}
	return l, err
}

func (p *celParser) and() (celExpr, error) {
	l, err := p.rel()
	for err == nil && p.peek("&&") {
		p.pos++
		var r celExpr
		if r, err = p.rel(); err == nil {
			l = celBin{"&&", l, r}
		}
	}
	return l, err
}

func (p *celParser) rel() (celExpr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for _, op := range []string{"==", "!=", "in"} {
		if p.peek(op) {
			p.pos++
			r, err := p.unary()
			if err != nil {
				return nil, err
			}
			return celBin{op, l, r}, nil
		}
	}
	return l, nil
}

func (p *celParser) unary() (celExpr, error) {
	if p.peek("!") {
		p.pos++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return celNot{x}, nil
	}
	return p.postfix()
}

func (p *celParser) postfix() (celExpr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.peek(".") {
		p.pos++
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != 'i' {
			return nil, errors.New("want a name after the dot")
		}
		name := p.toks[p.pos].text
		p.pos++
		if p.peek("(") {
			if name != "startsWith" && name != "endsWith" && name != "contains" {
				return nil, fmt.Errorf("unsupported function %s", name)
			}
			p.pos++
			arg, err := p.or()
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			x = celCall{x, name, arg}
			continue
		}
		v, ok := x.(celVar)
		if !ok {
			return nil, fmt.Errorf("field %s of a non-variable", name)
		}
		x = celVar{append(slices.Clone(v.path), name)}
	}
	return x, nil
}

func (p *celParser) primary() (celExpr, error) {
	if p.pos >= len(p.toks) {
		return nil, errors.New("unexpected end of expression")
	}
	t := p.toks[p.pos]
	p.pos++
	switch {
	case t.kind == 's':
		return celLit{celString(t.text)}, nil
	case t.kind == 'i' && (t.text == "true" || t.text == "false"):
		return celLit{celBoolean(t.text == "true")}, nil
	case t.kind == 'i' && t.text == "in":
		return nil, errors.New("unexpected in")
	case t.kind == 'i':
		return celVar{[]string{t.text}}, nil
	case t.text == "(":
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	case t.text == "[":
		var items []celExpr
		for !p.peek("]") {
			it, err := p.or()
			if err != nil {
				return nil, err
			}
			items = append(items, it)
			if !p.peek(",") {
				break
			}
			p.pos++
		}
		return celList{items}, p.expect("]")
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}
