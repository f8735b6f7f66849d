package nlb

import (
	"maps"
	"testing"
)

// TestDataPathOption checks that Config.DataPath selects the data path that
// then runs: the Service reports it (DataPath and the data_path label of
// tidepool_nlb_data_path_info) and requests flow through it.
func TestDataPathOption(t *testing.T) {
	auto := DataPathPortable
	if epollSupported {
		auto = DataPathEpoll
	}
	tests := []struct {
		give, want DataPath
	}{
		{"", auto},
		{DataPathAuto, auto},
		{DataPathPortable, DataPathPortable},
	}
	if epollSupported {
		tests = append(tests, struct{ give, want DataPath }{DataPathEpoll, DataPathEpoll})
	}
	for _, tt := range tests {
		t.Run("give "+string(tt.give), func(t *testing.T) {
			lns := listenSamePort(t, 2)
			var bs []Backend
			for i, id := range []string{"a", "b"} {
				bs = append(bs, startHTTPBackend(t, id, lns[i]).backend())
			}
			s := newService(t, Config{TargetPort: addrPort(lns[0].Addr()), Check: fastCheck("tcp", 0, ""), DataPath: tt.give})
			if got := s.DataPath(); got != tt.want {
				t.Errorf("DataPath() = %q, want %q", got, tt.want)
			}
			if v, found := labelledValue(t, s, "tidepool_nlb_data_path_info", "data_path", string(tt.want)); v != 1 {
				t.Errorf("tidepool_nlb_data_path_info{data_path=%q} = %v (found %v), want 1", tt.want, v, found)
			}
			s.SetBackends(bs)
			run(t, s)
			for _, b := range bs {
				waitHealth(t, s, b.ID, true)
			}
			if got, want := spread(t, s, 10), map[string]int{"a": 5, "b": 5}; !maps.Equal(got, want) {
				t.Errorf("answers by backend = %v, want %v", got, want)
			}
		})
	}
}

func TestParseDataPath(t *testing.T) {
	tests := []struct {
		give    string
		want    DataPath
		wantErr bool
	}{
		{"", DataPathAuto, false},
		{"auto", DataPathAuto, false},
		{"portable", DataPathPortable, false},
		{"epoll", DataPathEpoll, !epollSupported},
		{"goroutines", "", true},
		{"EPOLL", "", true},
	}
	for _, tt := range tests {
		got, err := ParseDataPath(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDataPath(%q) = %q, %v; want %q, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}
