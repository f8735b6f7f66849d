package autoscaler

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"reflect"
	"strconv"
	"time"
)

// statusPage serves the read-only HTML status page (GET / on the listen
// address): the pool, the pending signals, the last decisions with their
// reasons and results, and the policy with its parameters. It needs the same
// credentials as the webhook endpoints when they are configured, and
// refreshes itself every few seconds.
func (a *Autoscaler) statusPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="tidepool-autoscaler", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong credentials")
			return
		}
		var buf bytes.Buffer
		if err := statusTmpl.Execute(&buf, a.statusView()); err != nil {
			a.log.Error("render status page", "err", err)
			http.Error(w, "cannot render the status page", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(buf.Bytes())
	})
}

// statusView is what the status page shows.
type statusView struct {
	Status
	Policy  string
	Params  []param
	Refresh int // seconds
	Now     time.Time
	Metrics string
}

type param struct{ Name, Value string }

func (a *Autoscaler) statusView() statusView {
	v := statusView{Status: a.Status(), Refresh: 5, Now: a.cfg.Now()}
	v.Policy, v.Params = describePolicy(a.cfg.Policy)
	v.Params = append(v.Params,
		param{"tick interval", a.cfg.Interval.String()},
		param{"dry run", strconv.FormatBool(a.cfg.DryRun)},
		param{"drain timeout", a.cfg.DrainTimeout.String()},
		param{"drain grace", a.cfg.DrainGrace.String()},
	)
	if a.cfg.NLBID != "" {
		v.Params = append(v.Params, param{"load balancer", a.cfg.NLBID + " service " + a.cfg.NLBServiceID})
	}
	if a.cfg.Metrics != nil {
		v.Metrics = fmt.Sprintf("%T", a.cfg.Metrics)
		if pm, ok := a.cfg.Metrics.(PrometheusMetrics); ok {
			v.Metrics = "Prometheus at " + pm.URL
		}
	}
	return v
}

// describePolicy names the policy's type and lists its exported fields
// (those of embedded structs such as Limits flattened), in declaration
// order; an empty string shows as "(default)".
func describePolicy(p any) (string, []param) {
	if p == nil {
		return "none", nil
	}
	rv := reflect.ValueOf(p)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	name := rv.Type().String()
	var params []param
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		if v.Kind() != reflect.Struct {
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous && v.Field(i).Kind() == reflect.Struct {
				walk(v.Field(i))
				continue
			}
			val := fmt.Sprint(v.Field(i).Interface())
			if val == "" {
				val = "(default)"
			}
			params = append(params, param{f.Name, val})
		}
	}
	walk(rv)
	return name, params
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05") + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{"ago": ago}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>tidepool autoscaler</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; color: #222; max-width: 1200px; margin: 16px auto; padding: 0 16px; }
.meta { color: #666; }
table { border-collapse: collapse; margin: 8px 0 20px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; vertical-align: top; }
thead th, tbody th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.scaled td { font-weight: bold; }
tr.error td, tr.aborted td { color: #d62728; }
</style>
</head>
<body>
<h1>tidepool autoscaler</h1>
<p class="meta">read-only; refreshes every {{.Refresh}} s · JSON at <a href="status">/status</a> · <a href="metrics">/metrics</a></p>
<h2>Pool</h2>
<table id="pool"><tbody>
<tr><th>pool</th><td>{{.PoolID}}</td></tr>
<tr><th>size</th><td id="pool-size">{{.Pool.Size}}</td></tr>
<tr><th>state</th><td>{{if .Pool.State}}{{.Pool.State}}{{else}}unknown{{end}}</td></tr>
<tr><th>observed</th><td>{{ago .Now .ObservedAt}}</td></tr>
<tr><th>last change</th><td>{{ago .Now .LastScale}}</td></tr>
<tr><th>pending signals</th><td id="pending">{{.Pending.Up}} up, {{.Pending.Down}} down (since the last tick)</td></tr>
</tbody></table>
{{- if .Pool.Members}}
<table id="members"><thead><tr><th>member</th><th>created</th><th>public IP</th></tr></thead><tbody>
{{- range .Pool.Members}}
<tr><td>{{.ID}}</td><td>{{if .CreatedAt.IsZero}}unknown{{else}}{{.CreatedAt.Format "2006-01-02 15:04:05"}}{{end}}</td><td>{{.PublicIP}}</td></tr>
{{- end}}
</tbody></table>
{{- end}}
<h2>Policy</h2>
<table id="policy"><tbody>
<tr><th>policy</th><td>{{.Policy}}</td></tr>
{{- range .Params}}
<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{- end}}
{{- if .Metrics}}
<tr><th>metrics</th><td>{{.Metrics}}</td></tr>
{{- end}}
</tbody></table>
<h2>Last decisions</h2>
{{- if .Decisions}}
<table id="decisions"><thead><tr><th>time</th><th>from → to</th><th>action</th><th>reason</th><th>result</th><th>message</th></tr></thead><tbody>
{{- range .Decisions}}
<tr class="{{.Result}}"><td>{{.Time.Format "15:04:05"}}</td><td class="num">{{.From}} → {{.To}}</td><td>{{.Action}}</td><td>{{.Reason}}</td><td>{{.Result}}</td><td>{{.Message}}{{if .Error}}: {{.Error}}{{end}}</td></tr>
{{- end}}
</tbody></table>
{{- else}}
<p>No decision yet (the first comes after one tick).</p>
{{- end}}
</body>
</html>
`))
