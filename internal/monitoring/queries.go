package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Query is one PromQL expression that a rendered Grafana file sends to the
// Prometheus datasource.
type Query struct {
	// File is the rendered file it comes from, relative to the output
	// directory (FileGrafanaDashboard or FileGrafanaAlertRules).
	File string
	// Where names it inside the file: `panel "Latency" target B` or
	// `rule TidepoolPoolCPUHigh query A`.
	Where string
	// Expr is the PromQL expression, exactly as rendered.
	Expr string
}

// Queries parses the dashboard and Grafana alert rules rendered in dir and
// returns every Prometheus query they contain, in file order (dashboard
// first). It is read from the files, not kept in a second list, so that a test
// can run each one against a live Prometheus. Server-side expressions
// (reduce, threshold) are not PromQL and are left out. A query that is not on
// the Prometheus datasource, or has no expression, is an error.
func Queries(dir string) ([]Query, error) {
	dash, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(FileGrafanaDashboard)))
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	rules, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(FileGrafanaAlertRules)))
	if err != nil {
		return nil, fmt.Errorf("read grafana alert rules: %w", err)
	}
	qs, err := dashboardQueries(dash)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileGrafanaDashboard, err)
	}
	rqs, err := alertRuleQueries(rules)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FileGrafanaAlertRules, err)
	}
	return append(qs, rqs...), nil
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardPanel struct {
	Title      string           `json:"title"`
	Datasource *datasourceRef   `json:"datasource"`
	Panels     []dashboardPanel `json:"panels"` // rows nest panels
	Targets    []struct {
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
		Expr       string         `json:"expr"`
	} `json:"targets"`
}

func dashboardQueries(b []byte) ([]Query, error) {
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var qs []Query
	var walk func(ps []dashboardPanel) error
	walk = func(ps []dashboardPanel) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				where := fmt.Sprintf("panel %q target %s", p.Title, t.RefID)
				ds := t.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds == nil || ds.UID != DatasourceUID {
					return fmt.Errorf("%s: datasource %+v is not %q", where, ds, DatasourceUID)
				}
				if t.Expr == "" {
					return fmt.Errorf("%s: empty expr", where)
				}
				qs = append(qs, Query{File: FileGrafanaDashboard, Where: where, Expr: t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return qs, nil
}

// exprDatasourceUID marks Grafana's server-side expressions in alert rules.
const exprDatasourceUID = "__expr__"

func alertRuleQueries(b []byte) ([]Query, error) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Title string `yaml:"title"`
				Data  []struct {
					RefID         string `yaml:"refId"`
					DatasourceUID string `yaml:"datasourceUid"`
					Model         struct {
						Expr string `yaml:"expr"`
					} `yaml:"model"`
				} `yaml:"data"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var qs []Query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			for _, d := range r.Data {
				if d.DatasourceUID == exprDatasourceUID {
					continue
				}
				where := fmt.Sprintf("rule %s query %s", r.Title, d.RefID)
				if d.DatasourceUID != DatasourceUID {
					return nil, fmt.Errorf("%s: datasource %q is not %q", where, d.DatasourceUID, DatasourceUID)
				}
				if d.Model.Expr == "" {
					return nil, fmt.Errorf("%s: empty expr", where)
				}
				qs = append(qs, Query{File: FileGrafanaAlertRules, Where: where, Expr: d.Model.Expr})
			}
		}
	}
	return qs, nil
}
