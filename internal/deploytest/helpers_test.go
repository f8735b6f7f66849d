package deploytest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[string]string
		wantErr string
	}{
		{"quoting", "# comment\nA='x y $z'\nB=\"plain words\"\n\nC=bare\nD=\n", map[string]string{"A": "x y $z", "B": "plain words", "C": "bare", "D": ""}, ""},
		{"quote inside single quotes", "A='it's'\n", nil, "quote inside"},
		{"dollar in double quotes", "A=\"$HOME\"\n", nil, "inside double quotes"},
		{"space unquoted", "A=two words\n", nil, "unquoted value"},
		{"bad name", "1A=x\n", nil, "want KEY=VALUE"},
		{"duplicate", "A=1\nA=2\n", nil, "set twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseUnit(t *testing.T) {
	u, err := ParseUnit("[Unit]\nDescription=x\n; comment\n[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\nExecStart=/bin/c --flag\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Values("Service", "ExecStart"); !slices.Equal(got, []string{"/bin/b", "/bin/c --flag"}) {
		t.Errorf("ExecStart = %q, want the values after the reset", got)
	}
	if v, ok := u.Value("Unit", "Description"); !ok || v != "x" {
		t.Errorf("Description = %q, %v", v, ok)
	}
	for _, bad := range []string{"Key=outside\n", "[Unit\n", "[Unit]\nno equals\n", "[Unit]\nA=b \\\n c\n"} {
		if _, err := ParseUnit(bad); err == nil {
			t.Errorf("ParseUnit(%q) accepted", bad)
		}
	}
}

func TestParseCommandAndFlag(t *testing.T) {
	c, err := ParseCommand("+/usr/bin/install -d --mode 0755 --owner=tidepool /srv/x")
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefixes != "+" || c.Path != "/usr/bin/install" || len(c.Args) != 5 {
		t.Errorf("parsed %+v", c)
	}
	for _, tt := range []struct{ name, want string }{{"mode", "0755"}, {"owner", "tidepool"}} {
		if got, ok := Flag(c.Args, tt.name); !ok || got != tt.want {
			t.Errorf("Flag(%s) = %q, %v, want %q", tt.name, got, ok, tt.want)
		}
	}
	if _, ok := Flag(c.Args, "missing"); ok {
		t.Error("Flag(missing) found")
	}
	for _, bad := range []string{"", "relative/path", "/bin/sh -c 'x'", "/bin/a $VAR", "/bin/a; /bin/b"} {
		if _, err := ParseCommand(bad); err == nil {
			t.Errorf("ParseCommand(%q) accepted", bad)
		}
	}
}

func TestParseCloudConfigRejects(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"no header", "write_files: []\n", "#cloud-config"},
		{"unknown key", "#cloud-config\nwrite_file: []\n", "write_file"},
		{"unquoted mode", "#cloud-config\nwrite_files:\n  - path: /a\n    owner: root:root\n    permissions: 644\n", "permissions"},
		{"relative path", "#cloud-config\nwrite_files:\n  - path: a\n    owner: root:root\n    permissions: \"0644\"\n", "not absolute"},
		{"twice", "#cloud-config\nwrite_files:\n  - {path: /a, owner: root:root, permissions: \"0644\"}\n  - {path: /a, owner: root:root, permissions: \"0644\"}\n", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCloudConfig([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestEvaluatorFunctions(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "t.tftpl")
	if err := os.WriteFile(tmpl, []byte("a=${a} $${literal} %{ if b }yes%{ endif }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tf := `
variable "s" {
  type      = string
  sensitive = true
}
locals {
  host   = cidrhost("10.1.2.0/24", 5)
  host6  = cidrhost("2001:db8::/64", 0)
  out    = templatefile("${path.module}/t.tftpl", { a = var.s, b = true })
  hash   = sha256("abc")
  ends   = endswith("x/0", "/0")
  all    = alltrue([true, can(regex("^a", "abc"))])
  second = local.host
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tf), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Evaluate(nil, nil); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("Evaluate without the required variable: err = %v", err)
	}
	e, err := m.Evaluate(map[string]cty.Value{"s": cty.StringVal("v")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, marks := e.Locals["out"].Unmark()
	if _, ok := marks[Sensitive]; !ok {
		t.Error("templatefile result of a sensitive variable is not sensitive")
	}
	want := map[string]cty.Value{
		"host":   cty.StringVal("10.1.2.5"),
		"host6":  cty.StringVal("2001:db8::"),
		"hash":   cty.StringVal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
		"ends":   cty.True,
		"all":    cty.True,
		"second": cty.StringVal("10.1.2.5"),
	}
	for k, w := range want {
		if got := e.Locals[k]; !got.RawEquals(w) {
			t.Errorf("local.%s = %#v, want %#v", k, got, w)
		}
	}
	if got := out.AsString(); got != "a=v ${literal} yes\n" {
		t.Errorf("templatefile = %q", got)
	}
}
