package simulate

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"tidepool/internal/loadgen"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Trace
		wantErr string
	}{
		{name: "plain", in: "seconds,rps\n0,10\n1,20\n2,15\n",
			want: Trace{Name: "t", Start: []time.Duration{0, sec, 2 * sec}, Rate: []float64{10, 20, 15}, End: 3 * sec}},
		{name: "comments, spaces and extra columns", in: "# hi\nnote, rps, seconds\nx, 10.5, 0\ny, 0, 0.5\n",
			want: Trace{Name: "t", Start: []time.Duration{0, sec / 2}, Rate: []float64{10.5, 0}, End: sec}},
		{name: "a demo's load.csv", in: "offset_s,offered,sent\n0,2.000,2\n1,2.500,3\n",
			want: Trace{Name: "t", Start: []time.Duration{0, sec}, Rate: []float64{2, 2.5}, End: 2 * sec}},
		{name: "no header", in: "0,10\n1,10\n", wantErr: "want columns"},
		{name: "empty", in: "", wantErr: "read header"},
		{name: "one row", in: "seconds,rps\n0,10\n", wantErr: "1 rows, want at least 2"},
		{name: "bad rate", in: "seconds,rps\n0,ten\n1,10\n", wantErr: `row 2: bad rate "ten"`},
		{name: "negative rate", in: "seconds,rps\n0,-1\n1,10\n", wantErr: "not a finite rate"},
		{name: "NaN rate", in: "seconds,rps\n0,NaN\n1,10\n", wantErr: "not a finite rate"},
		{name: "bad time", in: "seconds,rps\n0,1\n-1,10\n", wantErr: `row 3: bad time "-1"`},
		{name: "not increasing", in: "seconds,rps\n0,1\n2,1\n1,1\n", wantErr: "not after step"},
		{name: "not from zero", in: "seconds,rps\n1,1\n2,1\n", wantErr: "starts at 1s"},
		{name: "short row", in: "seconds,rps\n0\n1,1\n", wantErr: "row 2 has 1 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadCSV(strings.NewReader(tt.in), "t")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadCSV = %+v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadCSV = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCSVRoundTrip(t *testing.T) {
	tr := Trace{Name: "rt", Start: []time.Duration{0, 10 * sec, 20 * sec}, Rate: []float64{1.25, 0, 1e4 / 3}, End: 30 * sec}
	var b bytes.Buffer
	if err := WriteCSV(&b, tr); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(&b, "rt")
	if err != nil || !reflect.DeepEqual(got, tr) {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, tr)
	}
	irregular := Trace{Name: "x", Start: []time.Duration{0, sec}, Rate: []float64{1, 1}, End: 5 * sec}
	if err := WriteCSV(&b, irregular); err == nil {
		t.Error("WriteCSV of a trace whose last step is longer: no error")
	}
}

func TestFromStages(t *testing.T) {
	stages := []loadgen.Stage{
		{Kind: loadgen.KindRamp, From: 0, To: 10, Duration: 10 * sec},
		{Kind: loadgen.KindSpike, From: 1, To: 5, Period: 500 * time.Millisecond, Duration: 2 * sec},
	}
	tr, err := FromStages("s", stages, sec)
	if err != nil {
		t.Fatal(err)
	}
	// Each second holds the exact mean rate: 0.5, 1.5, ... of the ramp, then
	// (5×0.5 + 1×0.5) = 3 and 1 for the spike stage.
	want := []float64{0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 3, 1}
	if !reflect.DeepEqual(tr.Rate, want) || tr.End != 12*sec {
		t.Errorf("rates %v end %s, want %v and 12s", tr.Rate, tr.End, want)
	}
	if _, err := FromStages("s", stages, 5*sec); err == nil {
		t.Error("length not a multiple of the step: no error")
	}
}

func TestPoisson(t *testing.T) {
	tr := Trace{Name: "flat", Start: make([]time.Duration, 20000), Rate: make([]float64, 20000)}
	for i := range tr.Start {
		tr.Start[i] = time.Duration(i) * sec
		tr.Rate[i] = 4
		if i >= 10000 {
			tr.Rate[i] = 400 // the normal approximation
		}
	}
	tr.End = 20000 * sec
	a, b := tr.Poisson("a", 1), tr.Poisson("b", 1)
	if !reflect.DeepEqual(a.Rate, b.Rate) {
		t.Fatal("same seed, different traces")
	}
	for _, part := range []struct {
		rates []float64
		mean  float64
	}{{a.Rate[:10000], 4}, {a.Rate[10000:], 400}} {
		var sum, sq float64
		for _, r := range part.rates {
			sum += r
			sq += r * r
		}
		n := float64(len(part.rates))
		mean, variance := sum/n, sq/n-(sum/n)*(sum/n)
		// Poisson: variance = mean; 5 standard errors of tolerance.
		if se := math.Sqrt(part.mean / n); math.Abs(mean-part.mean) > 5*se {
			t.Errorf("mean %v, want %v ± %v", mean, part.mean, 5*se)
		}
		if math.Abs(variance-part.mean) > 0.1*part.mean {
			t.Errorf("variance %v, want about %v", variance, part.mean)
		}
	}
}

// TestShippedTraces checks that the shipped trace files are exactly what
// their definitions generate (regenerate them with `tidepool simulate
// -write-traces internal/simulate/traces`).
func TestShippedTraces(t *testing.T) {
	gen, err := GenerateBuiltins()
	if err != nil {
		t.Fatal(err)
	}
	names := BuiltinNames()
	if len(gen) != len(names) || len(names) != 10 {
		t.Fatalf("%d generated, %d names, want 10", len(gen), len(names))
	}
	for i, want := range gen {
		got, err := Builtin(names[i])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("shipped %s differs from its definition (%d vs %d rows)", names[i], len(got.Start), len(want.Start))
		}
	}
	if _, err := Builtin("nope"); err == nil {
		t.Error("Builtin(nope): no error")
	}
}
