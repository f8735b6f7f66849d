package cloud

import (
	"slices"
	"testing"
)

func TestMemberEnviron(t *testing.T) {
	const key, secret = "EXOabcdef0123456789", "s3cr3t-value-of-the-api"
	tests := []struct {
		name        string
		env         []string
		want        []string
		wantDropped []string
	}{
		{"nothing to drop", []string{"PATH=/bin", "TIDEPOOL_APP_WORK=5ms"}, []string{"PATH=/bin", "TIDEPOOL_APP_WORK=5ms"}, nil},
		{"credential names, whatever their value",
			[]string{"EXOSCALE_KEY=other", "EXOSCALE_SECRET=", "EXOSCALE_API_KEY=x", "EXOSCALE_API_SECRET=y",
				"TIDEPOOL_CLOUD_KEY=k", "TIDEPOOL_CLOUD_SECRET=s", "HOME=/root"},
			[]string{"HOME=/root"},
			[]string{"EXOSCALE_KEY", "EXOSCALE_SECRET", "EXOSCALE_API_KEY", "EXOSCALE_API_SECRET", "TIDEPOOL_CLOUD_KEY", "TIDEPOOL_CLOUD_SECRET"}},
		{"the key or secret under another name",
			[]string{"TF_VAR_exoscale_secret=" + secret, "MY_KEY=" + key, "CREDS=k=" + key + ";s=" + secret, "LANG=C"},
			[]string{"LANG=C"},
			[]string{"TF_VAR_exoscale_secret", "MY_KEY", "CREDS"}},
		{"empty environment stays non-nil", []string{}, []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped := memberEnviron(tt.env, key, secret)
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("env = %q, want %q", got, tt.want)
			}
			if !slices.Equal(dropped, tt.wantDropped) {
				t.Errorf("dropped = %q, want %q", dropped, tt.wantDropped)
			}
		})
	}
	// A short credential only matches a whole value: "ab" must not remove
	// every variable that happens to contain those letters.
	got, _ := memberEnviron([]string{"PATH=/usr/lab/bin", "X=ab"}, "ab")
	if want := []string{"PATH=/usr/lab/bin"}; !slices.Equal(got, want) {
		t.Errorf("short credential: env = %q, want %q", got, want)
	}
}
