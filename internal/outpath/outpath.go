// Package outpath resolves the output paths a user gives tidepool (files and
// directories it writes) against the working directory, and checks, before
// anything starts, that they can be written. It owns no I/O beyond looking
// at the file system and must not import other tidepool packages.
package outpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Dir returns p as an absolute, clean path (a relative p is taken from the
// working directory at the time of the call) once it has checked that p is
// a writable directory, or that it can be created: its nearest existing
// ancestor is a writable directory. It creates nothing; Create does.
func Dir(p string) (string, error) {
	abs, err := absolute(p)
	if err != nil {
		return "", err
	}
	if err := creatable(abs); err != nil {
		return "", fmt.Errorf("directory %s: %w", abs, err)
	}
	return abs, nil
}

// File is Dir for a file: p, resolved as in Dir, must not be a directory,
// and its directory must exist and be writable or be creatable.
func File(p string) (string, error) {
	abs, err := absolute(p)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return "", fmt.Errorf("file %s: is a directory", abs)
	}
	if err := creatable(filepath.Dir(abs)); err != nil {
		return "", fmt.Errorf("file %s: directory %s: %w", abs, filepath.Dir(abs), err)
	}
	return abs, nil
}

// Create makes each directory and its missing parents (mode 0755). Commands
// call it once their whole configuration is valid, so that a configuration
// error leaves nothing behind.
func Create(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	return nil
}

func absolute(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", p, err)
	}
	return abs, nil
}

// creatable reports why dir cannot be used as a writable directory: the
// nearest existing path at or above it must be a directory we may write.
func creatable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		switch {
		case (errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)) && d != filepath.Dir(d):
			continue // look further up for what is in the way
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", d)
		}
		if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s is not writable: %w", d, err)
		}
		return nil
	}
}
