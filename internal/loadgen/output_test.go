package loadgen

import (
	"bytes"
	"context"
	"encoding/csv"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sampleRun() ([]Second, Summary) {
	tl := []Second{
		{Offset: 0, Offered: 12.5, Sent: 12, Missed: 1, Answered: 11, OK: 10, Late: 2,
			Errors: map[string]int{ErrHTTP5xx: 1, ErrTimeout: 1},
			P50:    1234567 * time.Nanosecond, P95: 20 * time.Millisecond, P99: 31*time.Millisecond + 7*time.Microsecond, Max: 2 * time.Second},
		{Offset: time.Second, Offered: 0},
	}
	sum := Summary{
		Target: "http://127.0.0.1:8080/", Method: "GET",
		Stages:  []Stage{{Kind: KindRamp, Duration: 30 * time.Second, To: 100}, {Kind: KindSine, Duration: time.Minute, From: 50, Amplitude: 30, Period: 20 * time.Second}},
		Started: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), Elapsed: 1500 * time.Millisecond,
		Scheduled: 90 * time.Second, Stopped: 1200 * time.Millisecond, Cancelled: true,
		Offered: 12.5, Planned: 13, Sent: 12, Missed: 1, Answered: 11, OK: 10, Late: 2,
		Errors: map[string]int{ErrHTTP5xx: 1, ErrTimeout: 1}, Workers: 7,
		Mean: 5 * time.Millisecond, Min: 90 * time.Microsecond, P50: time.Millisecond, P90: 3 * time.Millisecond,
		P95: 20 * time.Millisecond, P99: 31 * time.Millisecond, P999: time.Second, Max: 2 * time.Second,
	}
	return tl, sum
}

func TestWriteCSV(t *testing.T) {
	tl, _ := sampleRun()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, tl); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !reflect.DeepEqual(rows[0], CSVHeader) {
		t.Fatalf("csv rows %q; want header %q and 2 rows", rows, CSVHeader)
	}
	col := func(row []string, name string) string {
		for i, h := range rows[0] {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	want := map[string]string{
		"offset_s": "0", "offered": "12.500", "sent": "12", "missed": "1", "answered": "11", "ok": "10", "late": "2",
		"err_http_5xx": "1", "err_timeout": "1", "err_conn_refused": "0", "err_other": "0",
		"p50_ms": "1.235", "p95_ms": "20.000", "p99_ms": "31.007", "max_ms": "2000.000",
	}
	for name, w := range want {
		if got := col(rows[1], name); got != w {
			t.Errorf("row 1 %s = %q; want %q", name, got, w)
		}
	}
	if got := col(rows[2], "offset_s"); got != "1" {
		t.Errorf("row 2 offset_s = %q; want 1", got)
	}
	for _, k := range ErrorKinds {
		if !strings.Contains(strings.Join(rows[0], ","), "err_"+k) {
			t.Errorf("header lacks err_%s", k)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	tl, sum := sampleRun()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, tl, sum); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"summary"`, `"timeline"`, `"p99_ms": 31.007`, `"stages": [`, `"ramp:0-100:30s"`, `"offset_s": 1`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("json lacks %s:\n%s", key, buf.String())
		}
	}
	gotTL, gotSum, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotTL, tl) {
		t.Errorf("timeline round trip:\n got %+v\nwant %+v", gotTL, tl)
	}
	if !gotSum.Started.Equal(sum.Started) {
		t.Errorf("started %v; want %v", gotSum.Started, sum.Started)
	}
	gotSum.Started = sum.Started
	if !reflect.DeepEqual(gotSum, sum) {
		t.Errorf("summary round trip:\n got %+v\nwant %+v", gotSum, sum)
	}
	if _, _, err := ReadJSON(strings.NewReader(`{"summary": {}, "timeline": [], "extra": 1}`)); err == nil {
		t.Error("ReadJSON accepted an unknown field")
	}
	if _, _, err := ReadJSON(strings.NewReader(`{"timeline": [`)); err == nil {
		t.Error("ReadJSON accepted truncated input")
	}
}

// TestRunOutputsParseBack writes a real run's results and reads them back.
func TestRunOutputsParseBack(t *testing.T) {
	srv, _ := server(t, okHandler)
	sum, tl, err := Run(context.Background(), Config{Target: srv.URL, Stages: stages(t, "hold:30:2s")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var csvBuf, jsonBuf, text bytes.Buffer
	if err := WriteCSV(&csvBuf, tl); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&jsonBuf, tl, sum); err != nil {
		t.Fatal(err)
	}
	if err := WriteSummary(&text, sum); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&csvBuf).ReadAll()
	if err != nil || len(rows) != len(tl)+1 {
		t.Fatalf("csv: %d rows, %v; want %d", len(rows), err, len(tl)+1)
	}
	total := 0
	for _, row := range rows[1:] {
		n, err := strconv.Atoi(row[2]) // sent
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != sum.Sent {
		t.Errorf("csv sent column sums to %d; summary says %d", total, sum.Sent)
	}
	gotTL, gotSum, err := ReadJSON(&jsonBuf)
	if err != nil || len(gotTL) != len(tl) || gotSum.Sent != sum.Sent || gotSum.P99 != sum.P99 {
		t.Errorf("json: %d seconds, sent %d p99 %s, %v; want %d, %d, %s", len(gotTL), gotSum.Sent, gotSum.P99, err, len(tl), sum.Sent, sum.P99)
	}
	if want := "sent " + strconv.Itoa(sum.Sent); !strings.Contains(text.String(), want) {
		t.Errorf("summary text lacks %q:\n%s", want, text.String())
	}
}

func TestFormatSecond(t *testing.T) {
	tl, _ := sampleRun()
	got := FormatSecond(tl[0])
	want := "0s offered=12.5 sent=12 ok=10 late=2 missed=1 errors=timeout=1 http_5xx=1 p50=1.23ms p95=20ms p99=31.01ms max=2s"
	if got != want {
		t.Errorf("FormatSecond = %q\nwant %q", got, want)
	}
}
