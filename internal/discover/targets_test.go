package discover

import (
	"encoding/json"
	"reflect"
	"testing"
)

func labels(poolID, poolName, zone, id, name string) map[string]string {
	l := map[string]string{
		LabelPoolID: poolID, LabelPoolName: poolName, LabelZone: zone,
		LabelInstanceID: id, LabelInstanceName: name,
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

func TestBuild(t *testing.T) {
	pool := Pool{ID: "p1", Name: "web", Zone: "ch-gva-2"}
	tests := []struct {
		name        string
		pool        Pool
		members     []Member
		port        int
		want        []TargetGroup
		wantSkipped []Skipped
	}{
		{
			name: "empty pool gives an empty, non-nil list",
			pool: pool, port: 9100,
			want: []TargetGroup{},
		},
		{
			name: "one group per member, sorted by target then instance ID",
			pool: pool, port: 9100,
			members: []Member{
				{ID: "i3", Name: "web-c", PublicIP: "10.0.0.3", State: "running"},
				{ID: "i1", Name: "web-a", PublicIP: "10.0.0.10", State: "running"},
				{ID: "i2", Name: "web-b", PublicIP: "10.0.0.2", State: "starting"},
				{ID: "i0", Name: "web-z", PublicIP: "10.0.0.2", State: "running"},
			},
			want: []TargetGroup{
				{Targets: []string{"10.0.0.10:9100"}, Labels: labels("p1", "web", "ch-gva-2", "i1", "web-a")},
				{Targets: []string{"10.0.0.2:9100"}, Labels: labels("p1", "web", "ch-gva-2", "i0", "web-z")},
				{Targets: []string{"10.0.0.2:9100"}, Labels: labels("p1", "web", "ch-gva-2", "i2", "web-b")},
				{Targets: []string{"10.0.0.3:9100"}, Labels: labels("p1", "web", "ch-gva-2", "i3", "web-c")},
			},
		},
		{
			name: "members without IP, leaving, or of another pool are skipped with a reason",
			pool: pool, port: 8080,
			members: []Member{
				{ID: "noip", Name: "web-a", State: "starting"},
				{ID: "ok", Name: "web-b", PublicIP: "10.0.0.2", State: "stopped", ManagerID: "p1"},
				{ID: "bye", Name: "web-c", PublicIP: "10.0.0.3", State: "destroying"},
				{ID: "other", Name: "x", PublicIP: "10.0.0.4", State: "running", ManagerID: "p2"},
			},
			want: []TargetGroup{
				{Targets: []string{"10.0.0.2:8080"}, Labels: labels("p1", "web", "ch-gva-2", "ok", "web-b")},
			},
			wantSkipped: []Skipped{
				{"noip", "no IP address"},
				{"bye", "state destroying"},
				{"other", "managed by p2, not pool p1"},
			},
		},
		{
			name: "IPv6 only member is bracketed; empty labels are left out",
			pool: Pool{ID: "p1"}, port: 9100,
			members: []Member{{ID: "i1", IPv6: "2001:db8::1", State: "running"}},
			want: []TargetGroup{
				{Targets: []string{"[2001:db8::1]:9100"}, Labels: map[string]string{LabelPoolID: "p1", LabelInstanceID: "i1"}},
			},
		},
		{
			name: "IPv4 wins over IPv6",
			pool: pool, port: 9100,
			members: []Member{{ID: "i1", Name: "n", PublicIP: "10.0.0.1", IPv6: "2001:db8::1"}},
			want: []TargetGroup{
				{Targets: []string{"10.0.0.1:9100"}, Labels: labels("p1", "web", "ch-gva-2", "i1", "n")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := Build(tt.pool, tt.members, tt.port)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("groups:\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(skipped, tt.wantSkipped) {
				t.Errorf("skipped:\n got %+v\nwant %+v", skipped, tt.wantSkipped)
			}
		})
	}
}

func TestBuildIsIndependentOfInputOrder(t *testing.T) {
	pool := Pool{ID: "p", Name: "web", Zone: "z"}
	a := []Member{
		{ID: "1", PublicIP: "10.0.0.1"}, {ID: "2", PublicIP: "10.0.0.2"}, {ID: "3", PublicIP: "10.0.0.3"},
	}
	b := []Member{a[2], a[0], a[1]}
	ga, _ := Build(pool, a, 9100)
	gb, _ := Build(pool, b, 9100)
	ea, err := Encode(ga)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := Encode(gb)
	if err != nil {
		t.Fatal(err)
	}
	if string(ea) != string(eb) {
		t.Errorf("encodings differ by input order:\n%s\n%s", ea, eb)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name   string
		groups []TargetGroup
		want   string
	}{
		{"nil is an empty list, not null", nil, "[]\n"},
		{"labels sorted, indented", []TargetGroup{{
			Targets: []string{"10.0.0.1:9100"},
			Labels:  map[string]string{"zone": "z", "instance_id": "i", "pool_id": "p"},
		}}, `[
  {
    "targets": [
      "10.0.0.1:9100"
    ],
    "labels": {
      "instance_id": "i",
      "pool_id": "p",
      "zone": "z"
    }
  }
]
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.groups)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			var back []TargetGroup
			if err := json.Unmarshal(got, &back); err != nil {
				t.Errorf("output is not valid JSON: %v", err)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		before, after, added, removed []string
	}{
		{nil, nil, nil, nil},
		{nil, []string{"a", "b"}, []string{"a", "b"}, nil},
		{[]string{"a", "b"}, nil, nil, []string{"a", "b"}},
		{[]string{"a", "c", "d"}, []string{"b", "c", "e"}, []string{"b", "e"}, []string{"a", "d"}},
		{[]string{"a", "b"}, []string{"a", "b"}, nil, nil},
	}
	for _, tt := range tests {
		added, removed := diff(tt.before, tt.after)
		if !reflect.DeepEqual(added, tt.added) || !reflect.DeepEqual(removed, tt.removed) {
			t.Errorf("diff(%q, %q) = %q, %q; want %q, %q", tt.before, tt.after, added, removed, tt.added, tt.removed)
		}
	}
}
