package demo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

// journal records what the test phases did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

// component is a phase that starts, is ready, and runs until stopped.
func component(j *journal, name string) phase {
	return phase{name, func(ctx context.Context, ready func()) error {
		j.add("start " + name)
		ready()
		<-ctx.Done()
		j.add("stop " + name)
		return nil
	}}
}

func TestRunPhases(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		last    func(j *journal, cancel context.CancelFunc) phase
		wantErr string
		want    []string
	}{
		{
			name: "the last phase ends: every phase stops, the last started first",
			last: func(j *journal, _ context.CancelFunc) phase {
				return phase{"load", func(ctx context.Context, ready func()) error {
					j.add("start load")
					ready()
					return nil
				}}
			},
			want: []string{"start cloud", "start pool", "start load", "stop pool", "stop cloud"},
		},
		{
			name: "a phase fails: the error names it and everything stops",
			last: func(j *journal, _ context.CancelFunc) phase {
				return phase{"load", func(ctx context.Context, ready func()) error {
					j.add("start load")
					return boom
				}}
			},
			wantErr: "load: boom",
			want:    []string{"start cloud", "start pool", "start load", "stop pool", "stop cloud"},
		},
		{
			name: "the caller cancels: stopped in order, ctx's error",
			last: func(j *journal, cancel context.CancelFunc) phase {
				return phase{"load", func(ctx context.Context, ready func()) error {
					j.add("start load")
					ready()
					cancel()
					<-ctx.Done()
					j.add("stop load")
					return nil
				}}
			},
			wantErr: context.Canceled.Error(),
			want:    []string{"start cloud", "start pool", "start load", "stop load", "stop pool", "stop cloud"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var j journal
			err := runPhases(ctx, []phase{component(&j, "cloud"), component(&j, "pool"), tt.last(&j, cancel)})
			if (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Errorf("runPhases = %v, want error %q", err, tt.wantErr)
			}
			if got := j.get(); !slices.Equal(got, tt.want) {
				t.Errorf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRunPhasesFailureBeforeReady: a phase that fails while starting keeps
// the later phases from starting at all.
func TestRunPhasesFailureBeforeReady(t *testing.T) {
	var j journal
	err := runPhases(context.Background(), []phase{
		component(&j, "cloud"),
		{"pool", func(ctx context.Context, ready func()) error { return errors.New("no capacity") }},
		component(&j, "load"),
	})
	if err == nil || err.Error() != "pool: no capacity" {
		t.Errorf("runPhases = %v, want \"pool: no capacity\"", err)
	}
	if got, want := j.get(), []string{"start cloud", "stop cloud"}; !slices.Equal(got, want) {
		t.Errorf("journal %q, want %q", got, want)
	}
}
