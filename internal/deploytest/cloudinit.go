package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// CloudConfig is the part of a #cloud-config document that the project's
// user data uses: files to write, then commands to run once.
type CloudConfig struct {
	WriteFiles []WriteFile `yaml:"write_files"`
	RunCmd     []any       `yaml:"runcmd"`
}

// WriteFile is one write_files entry.
type WriteFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Content     string `yaml:"content"`
	Encoding    string `yaml:"encoding"`
	Defer       bool   `yaml:"defer"`
	Append      bool   `yaml:"append"`
}

var octalMode = regexp.MustCompile(`^0[0-7]{3}$`)

// ParseCloudConfig parses user data that must start with the line
// "#cloud-config". Decoding is strict: keys other than those of CloudConfig
// and WriteFile are errors (in this project they would be typos), and so are
// write_files entries without an absolute path, owner and a quoted octal
// permissions string ("0644"), and paths written twice.
func ParseCloudConfig(data []byte) (*CloudConfig, error) {
	if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
		return nil, errors.New(`user data does not start with the line "#cloud-config"`)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c CloudConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("cloud-config YAML: %w", err)
	}
	seen := map[string]bool{}
	for i, f := range c.WriteFiles {
		switch {
		case !strings.HasPrefix(f.Path, "/"):
			return nil, fmt.Errorf("write_files[%d]: path %q is not absolute", i, f.Path)
		case seen[f.Path]:
			return nil, fmt.Errorf("write_files[%d]: %s written twice", i, f.Path)
		case f.Owner == "":
			return nil, fmt.Errorf("write_files %s: no owner", f.Path)
		case !octalMode.MatchString(f.Permissions):
			return nil, fmt.Errorf("write_files %s: permissions %q, want a quoted octal mode such as \"0644\"", f.Path, f.Permissions)
		case f.Encoding != "":
			return nil, fmt.Errorf("write_files %s: encoding %q not supported here", f.Path, f.Encoding)
		}
		seen[f.Path] = true
	}
	return &c, nil
}

// File returns the write_files entry for path.
func (c *CloudConfig) File(path string) (WriteFile, bool) {
	for _, f := range c.WriteFiles {
		if f.Path == path {
			return f, true
		}
	}
	return WriteFile{}, false
}

// Mode is the file mode of Permissions.
func (f WriteFile) Mode() (fs.FileMode, error) {
	n, err := strconv.ParseUint(f.Permissions, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: permissions %q: %w", f.Path, f.Permissions, err)
	}
	return fs.FileMode(n), nil
}
