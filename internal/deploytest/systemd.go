package deploytest

import (
	"fmt"
	"regexp"
	"strings"
)

// Unit is a parsed systemd unit file or drop-in.
type Unit struct {
	Sections []UnitSection
}

// UnitSection is one [Section] of a unit, entries in file order.
type UnitSection struct {
	Name    string
	Entries []UnitEntry
}

// UnitEntry is one Key=Value line; Line counts from 1.
type UnitEntry struct {
	Key, Value string
	Line       int
}

var unitKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// ParseUnit parses systemd unit syntax: [Section] headers, Key=Value lines,
// blank lines and # or ; comments. Line continuations (a trailing
// backslash) are rejected: the project's units do not use them. It checks
// syntax only; systemd-analyze verify checks meaning.
func ParseUnit(text string) (*Unit, error) {
	u := &Unit{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("line %d: line continuations are not supported", n)
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			u.Sections = append(u.Sections, UnitSection{Name: line[1 : len(line)-1]})
		default:
			key, value, ok := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			if !ok || !unitKey.MatchString(key) {
				return nil, fmt.Errorf("line %d: want Key=Value, got %q", n, line)
			}
			if len(u.Sections) == 0 {
				return nil, fmt.Errorf("line %d: %s outside any section", n, key)
			}
			s := &u.Sections[len(u.Sections)-1]
			s.Entries = append(s.Entries, UnitEntry{Key: key, Value: strings.TrimSpace(value), Line: n})
		}
	}
	return u, nil
}

// Values returns the values of key in section, in order. As systemd does for
// list settings, an empty assignment drops the values before it.
func (u *Unit) Values(section, key string) []string {
	var vals []string
	for _, s := range u.Sections {
		if s.Name != section {
			continue
		}
		for _, e := range s.Entries {
			if e.Key != key {
				continue
			}
			if e.Value == "" {
				vals = nil
				continue
			}
			vals = append(vals, e.Value)
		}
	}
	return vals
}

// Value returns the last value of key in section.
func (u *Unit) Value(section, key string) (string, bool) {
	vals := u.Values(section, key)
	if len(vals) == 0 {
		return "", false
	}
	return vals[len(vals)-1], true
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseEnvFile parses a systemd EnvironmentFile in the subset the project
// writes: KEY=VALUE lines, blank lines and # comments, where VALUE is
// 'single-quoted' (taken literally), "double-quoted" without \, " or $
// inside, or bare without whitespace, quotes, backslashes or $. Anything
// else is an error rather than a guess at systemd's escaping rules.
func ParseEnvFile(text string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok || !envName.MatchString(key) {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		var val string
		switch {
		case len(raw) >= 2 && raw[0] == '\'' && raw[len(raw)-1] == '\'':
			val = raw[1 : len(raw)-1]
			if strings.Contains(val, "'") {
				return nil, fmt.Errorf("line %d: %s: quote inside single quotes", n, key)
			}
		case len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"':
			val = raw[1 : len(raw)-1]
			if strings.ContainsAny(val, "\"\\$") {
				return nil, fmt.Errorf("line %d: %s: \\, \" or $ inside double quotes", n, key)
			}
		default:
			if strings.ContainsAny(raw, " \t'\"\\$") {
				return nil, fmt.Errorf("line %d: %s: unquoted value with whitespace, quotes, \\ or $", n, key)
			}
			val = raw
		}
		if _, dup := env[key]; dup {
			return nil, fmt.Errorf("line %d: %s set twice", n, key)
		}
		env[key] = val
	}
	return env, nil
}

// Command is a parsed Exec*= line.
type Command struct {
	// Prefixes are systemd's special executable prefixes (-, @, :, +, !).
	Prefixes string
	// Path is the executable, Args the arguments after it.
	Path string
	Args []string
}

// ParseCommand parses an Exec*= value that uses plain words only: no quotes,
// backslashes, $ expansions or ; separators (systemd would interpret them;
// the project's tidepool units do not need them).
func ParseCommand(value string) (Command, error) {
	if strings.ContainsAny(value, "'\"\\$;") {
		return Command{}, fmt.Errorf("command %q: quotes, \\, $ and ; are not supported", value)
	}
	words := strings.Fields(value)
	if len(words) == 0 {
		return Command{}, fmt.Errorf("empty command")
	}
	path := strings.TrimLeft(words[0], "-@:+!")
	c := Command{Prefixes: words[0][:len(words[0])-len(path)], Path: path, Args: words[1:]}
	if !strings.HasPrefix(c.Path, "/") {
		return Command{}, fmt.Errorf("command %q: executable must be an absolute path", value)
	}
	return c, nil
}

// Flag returns the value of --name (or -name) in args, given as "--name
// value" or "--name=value", and whether it is present. A flag given twice is
// reported with the last value, as Go's flag package does.
func Flag(args []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == args[i] {
			continue
		}
		if k, v, ok := strings.Cut(a, "="); ok && k == name {
			val, found = v, true
		} else if a == name && i+1 < len(args) {
			val, found = args[i+1], true
			i++
		}
	}
	return val, found
}
