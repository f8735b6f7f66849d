// Package atomicfile publishes whole files atomically: a reader that opens the
// path sees either the previous content or the new content, never a partial,
// empty or mixed file. It follows Prometheus' tsdb writeMetaFile: write a
// temporary file in the same directory, fsync it, rename it over the target,
// then fsync the directory so the rename itself survives a crash.
//
// The temporary file is named "."+base+".tmp-<random>" (for example
// ".config.json.tmp-123456"), so globs such as "*.json", "*.yml" or "*.yaml"
// used by Prometheus file_sd_configs never match it.
//
// It owns publishing a file and must not import any other tidepool package.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TempPattern returns the os.CreateTemp pattern used for the temporary file of
// path: a hidden name ending in ".tmp-<random>" in the same directory.
func TempPattern(path string) string {
	return "." + filepath.Base(path) + ".tmp-*"
}

// Write atomically replaces the file at path with data and mode perm (set
// explicitly, so the umask does not apply). The parent directory must exist.
// It blocks until the data and the rename are on stable storage (fsync of the
// file and of the directory). On an error before the rename the previous file,
// if any, is left untouched and the temporary file is removed; if only the
// final directory fsync fails, the new content is already in place.
func Write(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPattern(path))
	if err != nil {
		return fmt.Errorf("atomicfile: create temp file: %w", err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			// Best effort: the temp file is ours and is useless after a failure.
			if rmErr := os.Remove(tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("atomicfile: remove temp file: %w", rmErr))
			}
		}
	}()
	if _, err = f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("atomicfile: write %s: %w", tmp, err), f.Close())
	}
	if err = f.Chmod(perm); err != nil {
		return errors.Join(fmt.Errorf("atomicfile: chmod %s: %w", tmp, err), f.Close())
	}
	if err = f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("atomicfile: sync %s: %w", tmp, err), f.Close())
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	// From here on the new content is visible and the temp file is gone.
	renamed = true
	return syncDir(dir)
}

// WriteIfChanged is Write, except that it does nothing when the file at path
// already holds exactly data. It reports whether it wrote (false with an error
// means the outcome is the one documented on Write). A missing or unreadable
// current file counts as changed. Comparing against the file, not a cached
// copy, also restores a file that someone deleted or edited.
func WriteIfChanged(path string, data []byte, perm fs.FileMode) (bool, error) {
	cur, err := os.ReadFile(path)
	if err == nil && bytes.Equal(cur, data) {
		return false, nil
	}
	if err := Write(path, data, perm); err != nil {
		return false, err
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("atomicfile: sync dir %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("atomicfile: close dir %s: %w", dir, err)
	}
	return nil
}
