package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var sampleDir = flag.String("report.sample", "", "if set, write report-sample.{png,html} from synthetic data into this directory")

// TestWriteSample renders the 4-minute synthetic demo for a human to look at:
//
//	go test ./internal/report -run TestWriteSample -report.sample=/tmp
func TestWriteSample(t *testing.T) {
	if *sampleDir == "" {
		t.Skip("set -report.sample=DIR to write a sample report")
	}
	d := synthetic(240, 1)
	for name, write := range map[string]func(*os.File) error{
		"report-sample.png":  func(f *os.File) error { return WritePNG(f, d) },
		"report-sample.html": func(f *os.File) error { return WriteHTML(f, d) },
	} {
		path := filepath.Join(*sampleDir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	t.Logf("summary:\n%s", Summarize(d).Text())
	for i, tc := range renderCases() {
		path := filepath.Join(*sampleDir, fmt.Sprintf("report-case-%d.png", i))
		var buf bytes.Buffer
		if err := WritePNG(&buf, tc.d); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%s)", path, tc.name)
	}
}
