package monitoring

import (
	"reflect"
	"strings"
	"testing"
)

func TestParamsDefaults(t *testing.T) {
	got := Params{}.WithDefaults()
	want := Params{
		FileSDPath:          "/srv/service-discovery/config.json",
		NodePort:            9100,
		AppPort:             8080,
		AppMetricsPath:      "/metrics",
		AutoscalerURL:       "http://127.0.0.1:8090",
		AutoscalerTokenFile: "/etc/tidepool/autoscaler-token",
		AutoscalerTargets:   []string{"127.0.0.1:8090"},
		AlertmanagerAddr:    "127.0.0.1:9093",
		PrometheusURL:       "http://127.0.0.1:9090",
		GrafanaDashboardDir: "/var/lib/grafana/dashboards",
		ScaleUpAbove:        0.8,
		ScaleDownBelow:      0.2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Params{}.WithDefaults() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParamsAutoscalerTargetFromURL(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"http://10.0.0.5:8090/", "10.0.0.5:8090"},
		{"http://autoscaler.internal", "autoscaler.internal:80"},
		{"https://autoscaler.internal/base", "autoscaler.internal:443"},
	}
	for _, tt := range tests {
		got := Params{AutoscalerURL: tt.url}.WithDefaults().AutoscalerTargets
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("AutoscalerURL %q: targets %q, want [%q]", tt.url, got, tt.want)
		}
	}
	explicit := Params{AutoscalerTargets: []string{"10.0.0.9:9000"}}.WithDefaults().AutoscalerTargets
	if !reflect.DeepEqual(explicit, []string{"10.0.0.9:9000"}) {
		t.Errorf("explicit AutoscalerTargets replaced: %q", explicit)
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name   string
		params Params
		want   string // "" = valid
	}{
		{"zero value", Params{}, ""},
		{"all set", Params{FileSDPath: "/tmp/sd.json", NodePort: 19100, AppPort: 18080, AutoscalerURL: "https://a.example/x",
			DiscoverTargets: []string{"127.0.0.1:9101"}, CloudTargets: []string{"[::1]:9102"}, ScaleUpAbove: 0.7, ScaleDownBelow: 0.3}, ""},
		{"relative file_sd", Params{FileSDPath: "sd.json"}, "must be absolute"},
		{"relative token file", Params{AutoscalerTokenFile: "token"}, "autoscaler token file"},
		{"node port", Params{NodePort: 70000}, "node port 70000"},
		{"app port", Params{AppPort: -1}, "app port -1"},
		{"metrics path", Params{AppMetricsPath: "metrics"}, "must start with /"},
		{"autoscaler scheme", Params{AutoscalerURL: "ftp://x:1"}, "autoscaler URL"},
		{"autoscaler query", Params{AutoscalerURL: "http://x:1/?a=b"}, "no query"},
		{"prometheus no host", Params{PrometheusURL: "http://"}, "Prometheus URL"},
		{"alertmanager no port", Params{AlertmanagerAddr: "127.0.0.1"}, "alertmanager address"},
		{"bad cloud target", Params{CloudTargets: []string{"127.0.0.1:0"}}, "cloud target"},
		{"grafana dir", Params{GrafanaDashboardDir: "dash"}, "grafana dashboard dir"},
		{"thresholds swapped", Params{ScaleUpAbove: 0.2, ScaleDownBelow: 0.8}, "thresholds"},
		{"threshold above 1", Params{ScaleUpAbove: 1.5}, "thresholds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.params.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}
