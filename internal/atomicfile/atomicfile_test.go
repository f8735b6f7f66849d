package atomicfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// onlyFile fails unless dir holds exactly the file name (no temp leftovers).
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("directory holds %q, want only %q", names, name)
	}
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	for i, content := range []string{`[{"a":1}]`, `[]`, strings.Repeat("x", 1<<20)} {
		if err := Write(path, []byte(content), 0o644); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("write %d: file holds %d bytes, want %d", i, len(got), len(content))
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("write %d: mode %v, want %v", i, fi.Mode().Perm(), os.FileMode(0o644))
		}
	}
	onlyFile(t, dir, "config.json")
}

func TestWriteModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	path := filepath.Join(t.TempDir(), "config.json")
	if err := Write(path, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o644 {
		t.Errorf("mode %v, want %v", got, os.FileMode(0o644))
	}
}

func TestWriteIfChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	steps := []struct {
		name        string
		content     string
		wantChanged bool
	}{
		{"missing file is written", "[1]", true},
		{"same content is not rewritten", "[1]", false},
		{"new content is written", "[1,2]", true},
		{"same again is not rewritten", "[1,2]", false},
	}
	var lastIno uint64
	for _, s := range steps {
		changed, err := WriteIfChanged(path, []byte(s.content), 0o644)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		// Every real write renames a new file into place: a new inode.
		ino := inode(t, path)
		if sameInode := ino == lastIno; sameInode == s.wantChanged {
			t.Errorf("%s: inode %d -> %d, want rewritten = %v", s.name, lastIno, ino, s.wantChanged)
		}
		lastIno = ino
	}

	// A file deleted or edited by someone else is restored.
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := WriteIfChanged(path, []byte("[1,2]"), 0o644); err != nil || !changed {
		t.Errorf("after edit: changed = %v, err = %v; want true, nil", changed, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if changed, err := WriteIfChanged(path, []byte("[1,2]"), 0o644); err != nil || !changed {
		t.Errorf("after delete: changed = %v, err = %v; want true, nil", changed, err)
	}
	onlyFile(t, dir, "config.json")
}

func TestWriteFailureKeepsOldFileAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	// A directory in the way makes the rename fail after the temp file exists.
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("[]"), 0o644); err == nil {
		t.Fatal("Write over a non-empty directory: got nil error, want one")
	}
	onlyFile(t, dir, "config.json")
	if got, err := os.ReadFile(filepath.Join(path, "keep")); err != nil || string(got) != "old" {
		t.Errorf("old content = %q, %v; want %q", got, err, "old")
	}

	if err := Write(filepath.Join(dir, "missing", "config.json"), []byte("[]"), 0o644); err == nil {
		t.Error("Write into a missing directory: got nil error, want one")
	}
}

func TestTempNameNotMatchedByFileSDGlobs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	f, err := os.CreateTemp(dir, TempPattern(path))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(f.Name())
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Prometheus file_sd_configs accept *.json, *.yml and *.yaml patterns.
	for _, glob := range []string{"*.json", "*.yml", "*.yaml", "config*.json", "*config.json*.json"} {
		if ok, err := filepath.Match(glob, name); err != nil || ok {
			t.Errorf("glob %q matches temp file %q (err %v)", glob, name, err)
		}
	}
	if !strings.HasPrefix(name, ".config.json.tmp-") {
		t.Errorf("temp name %q, want prefix %q", name, ".config.json.tmp-")
	}
}

// fastTempDir returns a temporary directory on tmpfs (/dev/shm) when there is
// one, else t.TempDir(). Rename atomicity is a VFS guarantee, the same on any
// Linux filesystem; tmpfs only makes fsync free, so a stress test can afford
// thousands of rewrites on a slow disk.
func fastTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "atomicfile-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return dir
}

// TestConcurrentReaderSeesWholeFiles rewrites the file thousands of times,
// alternating very different sizes, while a reader reads it as fast as it
// can: every read must be exactly one of the versions written.
func TestConcurrentReaderSeesWholeFiles(t *testing.T) {
	path := filepath.Join(fastTempDir(t), "config.json")
	versions := make([][]byte, 8)
	for i := range versions {
		var b bytes.Buffer
		b.WriteString("[")
		for j := 0; j <= i*200; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"targets":["10.0.%d.%d:9100"]}`, i, j%250)
		}
		b.WriteString("]\n")
		versions[i] = b.Bytes()
	}
	if err := Write(path, versions[0], 0o644); err != nil {
		t.Fatal(err)
	}
	// At least minRewrites rewrites, and more until the reader has done
	// minReads reads (bounded, in case the reader starves).
	const minRewrites, minReads, maxRewrites = 3000, 3000, 100000
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := os.ReadFile(path)
			reads.Add(1)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			ok := false
			for _, v := range versions {
				if bytes.Equal(got, v) {
					ok = true
					break
				}
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("read %d bytes that match no version", len(got)))
			}
		}
	}()
	rewrites := 0
	for rewrites < minRewrites || (reads.Load() < minReads && rewrites < maxRewrites) {
		rewrites++
		if err := Write(path, versions[rewrites%len(versions)], 0o644); err != nil {
			t.Errorf("rewrite %d: %v", rewrites, err)
			break
		}
	}
	close(done)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d reads saw a partial file; first: %s", len(bad), reads.Load(), bad[0])
	}
	if reads.Load() < minReads {
		t.Errorf("only %d reads during %d rewrites, want >= %d for the test to mean something", reads.Load(), rewrites, minReads)
	}
	t.Logf("%d reads during %d rewrites", reads.Load(), rewrites)
}
