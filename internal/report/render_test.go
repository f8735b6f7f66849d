package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// renderCases are Data shapes every renderer must handle.
func renderCases() []struct {
	name        string
	d           Data
	hasScaleOut bool
} {
	manyInstances := synthetic(240, 2)
	for i := range manyInstances.Samples {
		smp := &manyInstances.Samples[i]
		smp.CPU = map[string]float64{}
		for k := range 30 {
			if i > k*5 { // instances appear one after another
				smp.CPU[fmt.Sprintf("10.0.0.%d", k+1)] = 0.3 + 0.02*float64(k)
			}
		}
	}
	unknown := make([]Sample, 30)
	for i := range unknown {
		unknown[i] = Sample{T: time.Duration(i) * time.Second, OfferedRPS: math.NaN(), AnsweredRPS: math.NaN(),
			PoolSize: -1, RunningSize: -1, AvgCPU: math.NaN()}
	}
	weird := synthetic(60, 4)
	weird.Samples[3].OfferedRPS = math.Inf(1)
	weird.Samples[4].AvgCPU = 7 // 700 %, off the chart
	weird.Samples[5].T = -5 * time.Second
	weird.Samples[6].CPU = map[string]float64{"": math.Inf(-1), strings.Repeat("very-long-instance-name-", 5): 0.5}
	weird.Events = append(weird.Events, Event{T: time.Hour, Kind: KindScaleOut, From: 4, To: 40},
		Event{T: -time.Second, Kind: "unknown-kind"})
	return []struct {
		name        string
		d           Data
		hasScaleOut bool
	}{
		{"synthetic 4 min", synthetic(240, 1), true},
		{"empty", Data{}, false},
		{"events only", Data{Events: []Event{{T: 10 * time.Second, Kind: KindScaleOut, From: 1, To: 2}}}, true},
		{"one sample", Data{Samples: []Sample{{T: time.Second, OfferedRPS: 5, AnsweredRPS: 5, PoolSize: 1, RunningSize: 1, AvgCPU: 0.5, P50: ms(20), P95: ms(30), P99: ms(40), CPU: map[string]float64{"a": 0.5}}}}, false},
		{"everything unknown", Data{Samples: unknown}, false},
		{"long run 1 h", synthetic(3600, 5), true},
		{"30 instances", manyInstances, true},
		{"non-finite and out-of-range values", weird, true},
	}
}

func TestWritePNG(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := WritePNG(&buf, tc.d); err != nil {
				t.Fatalf("WritePNG: %v", err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("output does not decode as PNG: %v", err)
			}
			if got := img.Bounds().Size(); got != (image.Point{X: PNGWidth, Y: PNGHeight}) {
				t.Errorf("image size = %v, want %dx%d px", got, PNGWidth, PNGHeight)
			}
			colours := countColours(img)
			if colours < 2 {
				t.Errorf("image has %d colour(s), want a drawing", colours)
			}
			if got := hasColour(img, scaleOutClr); got != tc.hasScaleOut {
				t.Errorf("scale-out marker colour present = %v, want %v", got, tc.hasScaleOut)
			}
		})
	}
}

// TestWritePNGDrawsData checks, without a golden image, that the panels
// carry the data: a report with samples has many more colours (lines,
// anti-aliasing, legends) than the "no data" image.
func TestWritePNGDrawsData(t *testing.T) {
	decode := func(d Data) image.Image {
		t.Helper()
		var buf bytes.Buffer
		if err := WritePNG(&buf, d); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	empty := countColours(decode(Data{}))
	full := countColours(decode(synthetic(240, 1)))
	if full < 10*empty || full < 200 {
		t.Errorf("synthetic report has %d colours, no-data image %d; want many more in the former", full, empty)
	}
	// Every series colour of the CPU panel's first instances shows up.
	img := decode(synthetic(240, 1))
	for i, c := range instancePalette[:4] {
		if !hasColour(img, c) {
			t.Errorf("instance %d colour %v not in the image", i+1, c)
		}
	}
}

// pixels returns the image's colours in row order.
func pixels(img image.Image) []color.RGBA {
	b := img.Bounds()
	out := make([]color.RGBA, 0, b.Dx()*b.Dy())
	if rgba, ok := img.(*image.RGBA); ok {
		for i := 0; i+3 < len(rgba.Pix); i += 4 {
			out = append(out, color.RGBA{rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3]})
		}
		return out
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out = append(out, color.RGBAModel.Convert(img.At(x, y)).(color.RGBA))
		}
	}
	return out
}

func countColours(img image.Image) int {
	seen := map[color.RGBA]struct{}{}
	for _, c := range pixels(img) {
		seen[c] = struct{}{}
	}
	return len(seen)
}

func hasColour(img image.Image, c color.Color) bool {
	return slices.Contains(pixels(img), color.RGBAModel.Convert(c).(color.RGBA))
}

func TestWriteHTML(t *testing.T) {
	d := synthetic(240, 1)
	d.Title = `demo <script>alert("x")</script> & co`
	d.Notes = append(d.Notes, "note with <b>markup</b>")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, d); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	raw := buf.String()
	if !strings.HasPrefix(raw, "<!DOCTYPE html>") {
		t.Errorf("page starts with %q, want <!DOCTYPE html>", raw[:min(len(raw), 30)])
	}
	for _, forbidden := range []string{"<?xml", "http://", "https://"} {
		if forbidden == "http://" {
			// The SVG namespace URIs are identifiers, not fetched assets.
			raw2 := strings.ReplaceAll(raw, `xmlns="http://www.w3.org/2000/svg"`, "")
			raw2 = strings.ReplaceAll(raw2, `xmlns:xlink="http://www.w3.org/1999/xlink"`, "")
			if strings.Contains(raw2, forbidden) {
				t.Errorf("page refers to %q: not self-contained", forbidden)
			}
			continue
		}
		if strings.Contains(raw, forbidden) {
			t.Errorf("page contains %q", forbidden)
		}
	}

	// The inline SVG is also well-formed XML (for tools that extract it).
	start, end := strings.Index(raw, "<svg"), strings.LastIndex(raw, "</svg>")
	if start < 0 || end < start {
		t.Fatalf("no <svg>…</svg> in the page")
	}
	dec := xml.NewDecoder(strings.NewReader(raw[start : end+len("</svg>")]))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("inline SVG is not well-formed XML: %v", err)
		}
	}

	doc, err := html.Parse(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	count := map[string]int{}
	var texts []string // text content of SVG <text> elements
	var scripts int
	var h1 string
	var tables = map[string][][]string{} // class -> rows of cell texts
	var walk func(n *html.Node, inSVG bool)
	walk = func(n *html.Node, inSVG bool) {
		if n.Type == html.ElementNode {
			count[n.Data]++
			switch n.Data {
			case "svg":
				inSVG = true
			case "script":
				scripts++
			case "h1":
				h1 = textOf(n)
			case "text":
				if inSVG {
					texts = append(texts, textOf(n))
				}
			case "table":
				tables[attr(n, "class")] = tableRows(n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inSVG)
		}
	}
	walk(doc, false)

	if count["svg"] != 1 {
		t.Errorf("got %d <svg> elements, want 1", count["svg"])
	}
	if count["path"] < 50 {
		t.Errorf("got %d <path> elements, want the series, grids and markers (>= 50)", count["path"])
	}
	for _, want := range []string{
		"Load: offered vs answered", "Pool size", "CPU utilisation", "Latency (from planned send time)", "Failed and late requests",
		"load (req/s)", "members", "CPU (%)", "latency (ms)", "requests (req/s)", "time since demo start (min:s)",
		"offered (planned)", "answered", "running", "starting", "draining", "pool average", "tidepool-1", "tidepool-4", "p50", "p95", "p99", "failed", "sent late",
		"scale-out threshold 80 %", "+1 → 2", "+1 → 4", "−1 → 1",
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("SVG has no text %q", want)
		}
	}
	if scripts != 0 {
		t.Errorf("got %d <script> elements from an escaped title, want 0", scripts)
	}
	if h1 != d.Title {
		t.Errorf("h1 = %q, want %q", h1, d.Title)
	}

	s := Summarize(d)
	summary := map[string]string{}
	for _, r := range tables["summary"] {
		if len(r) == 2 {
			summary[r[0]] = r[1]
		}
	}
	for label, want := range map[string]string{
		"Requests":   fmt.Sprintf("%d total, %d OK, %d failed", s.Requests, s.OK, s.Failed),
		"Latency":    "p95 " + fmtMS(s.P95),
		"Pool size":  "start 1, peak 4, final 1 members",
		"Scale-outs": "+1 → 2 at 35s",
	} {
		if !strings.Contains(summary[label], want) {
			t.Errorf("summary row %q = %q, want it to contain %q", label, summary[label], want)
		}
	}
	if got, want := len(tables["events"]), len(d.Events)+1; got != want {
		t.Errorf("events table has %d rows, want %d (header + one per event)", got, want)
	}
	if got, want := len(tables["samples"]), len(d.Samples)+1; got != want {
		t.Errorf("samples table has %d rows, want %d", got, want)
	}
	if !strings.Contains(raw, "note with &lt;b&gt;markup&lt;/b&gt;") {
		t.Errorf("note not shown escaped")
	}
}

func TestWriteHTMLEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, Data{}); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	for _, want := range []string{"<svg", "no data", "No events were recorded.", "All samples (0)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("empty report missing %q", want)
		}
	}
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return strings.TrimSpace(b.String())
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func tableRows(table *html.Node) [][]string {
	var rows [][]string
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			var cells []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
					cells = append(cells, textOf(c))
				}
			}
			rows = append(rows, cells)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(table)
	return rows
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "nested")
	d := synthetic(120, 7)
	for range 2 { // the second run replaces the files
		htmlPath, pngPath, err := WriteFiles(dir, d)
		if err != nil {
			t.Fatalf("WriteFiles: %v", err)
		}
		if want := filepath.Join(dir, HTMLFile); htmlPath != want {
			t.Errorf("html path = %q, want %q", htmlPath, want)
		}
		if want := filepath.Join(dir, PNGFile); pngPath != want {
			t.Errorf("png path = %q, want %q", pngPath, want)
		}
		f, err := os.Open(pngPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != PNGWidth || cfg.Height != PNGHeight {
			t.Errorf("png: %dx%d, err %v; want %dx%d", cfg.Width, cfg.Height, err, PNGWidth, PNGHeight)
		}
		b, err := os.ReadFile(htmlPath)
		if err != nil || !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte("</html>")) {
			t.Errorf("html: %d bytes, err %v; want a whole page", len(b), err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{HTMLFile, PNGFile}; !slices.Equal(names, want) {
			t.Errorf("dir holds %v, want exactly %v (no temp files)", names, want)
		}
	}
}

func TestWriteFilesBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := WriteFiles(file, synthetic(10, 1)); err == nil {
		t.Fatalf("WriteFiles into a regular file: got nil error, want one")
	}
	if _, _, err := WriteFiles(filepath.Join(file, "sub"), synthetic(10, 1)); err == nil {
		t.Fatalf("WriteFiles under a regular file: got nil error, want one")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteErrors(t *testing.T) {
	for name, write := range map[string]func(io.Writer, Data) error{"png": WritePNG, "html": WriteHTML} {
		err := write(failingWriter{}, synthetic(10, 1))
		if err == nil || !strings.Contains(err.Error(), io.ErrClosedPipe.Error()) {
			t.Errorf("%s to a failing writer: err = %v, want it to wrap %v", name, err, io.ErrClosedPipe)
		}
	}
}

func BenchmarkWritePNGOneHour(b *testing.B) {
	d := synthetic(3600, 1)
	for b.Loop() {
		if err := WritePNG(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteHTMLOneHour(b *testing.B) {
	d := synthetic(3600, 1)
	var n int
	for b.Loop() {
		var buf bytes.Buffer
		if err := WriteHTML(&buf, d); err != nil {
			b.Fatal(err)
		}
		n = buf.Len()
	}
	b.ReportMetric(float64(n), "html-bytes")
}
