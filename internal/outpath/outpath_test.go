package outpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirAndFile(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	tests := []struct {
		name    string
		check   func(string) (string, error)
		in      string
		want    string
		wantErr string
	}{
		{"relative dir", Dir, "out", filepath.Join(root, "out"), ""},
		{"nested missing dir", Dir, "a/b/c", filepath.Join(root, "a/b/c"), ""},
		{"existing dir", Dir, ".", root, ""},
		{"dir under a file", Dir, "f/sub", "", "is not a directory"},
		{"dir is a file", Dir, "f", "", "is not a directory"},
		{"empty dir", Dir, "", "", "empty path"},
		{"relative file", File, "rel/as.json", filepath.Join(root, "rel/as.json"), ""},
		{"file in cwd", File, "x.json", filepath.Join(root, "x.json"), ""},
		{"file is a dir", File, ".", "", "is a directory"},
		{"file under a file", File, "f/x.json", "", "is not a directory"},
		{"absolute file", File, filepath.Join(root, "y.json"), filepath.Join(root, "y.json"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.check(tt.in)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("(%q) = %q, %v; want %q, error containing %q", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	// Checking creates nothing.
	for _, p := range []string{"out", "a", "rel"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s was created by a check", p)
		}
	}
}

func TestCreate(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "a", "b")
	if err := Create(d, root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.Errorf("Create(%s): %v", d, err)
	}
	if err := Create(filepath.Join(root, "a", "b", "..", "..", "x", "y")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(root, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Create(filepath.Join(f, "sub")); err == nil {
		t.Error("Create under a file: want an error")
	}
}
