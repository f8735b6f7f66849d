package deploytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"tidepool/internal/buildbin"
	"tidepool/internal/loopback"
	"tidepool/internal/monitoring"
)

// userData is one rendered cloud-init document.
type userData struct {
	name   string // "member" or "monitoring"
	text   string
	marked bool // whether Terraform would treat it as sensitive
	cfg    *CloudConfig
}

// renderUserData evaluates the user_data of the pool and of the monitoring
// instance as Terraform would, and parses both.
func renderUserData(t *testing.T, overrides map[string]cty.Value) (member, mon userData) {
	t.Helper()
	e := evaluate(t, overrides)
	get := func(name, res string) userData {
		v := attrValue(t, e, res, "user_data")
		plain, marks := v.UnmarkDeep()
		_, marked := marks[Sensitive]
		text := plain.AsString()
		cfg, err := ParseCloudConfig([]byte(text))
		if err != nil {
			t.Fatalf("%s user data: %v\n%s", name, err, text)
		}
		return userData{name: name, text: text, marked: marked, cfg: cfg}
	}
	return get("member", "exoscale_instance_pool.members"), get("monitoring", "exoscale_compute_instance.monitoring")
}

func TestUserDataIsValidCloudConfig(t *testing.T) {
	for _, create := range []bool{true, false} {
		t.Run(fmt.Sprintf("create_agent_api_key=%v", create), func(t *testing.T) {
			member, mon := renderUserData(t, map[string]cty.Value{"create_agent_api_key": cty.BoolVal(create)})
			for _, ud := range []userData{member, mon} {
				// Exoscale takes at most 32 KiB of base64-encoded user data.
				if n := base64.StdEncoding.EncodedLen(len(ud.text)); n > 32768 {
					t.Errorf("%s user data is %d bytes base64-encoded, over Exoscale's 32768", ud.name, n)
				}
				if !ud.marked {
					t.Errorf("%s user data is not sensitive: terraform plan would print its secrets", ud.name)
				}
				wantRun := []any{[]any{"/usr/local/sbin/tidepool-bootstrap"}}
				if fmt.Sprint(ud.cfg.RunCmd) != fmt.Sprint(wantRun) {
					t.Errorf("%s runcmd = %v, want %v", ud.name, ud.cfg.RunCmd, wantRun)
				}
				boot, ok := ud.cfg.File("/usr/local/sbin/tidepool-bootstrap")
				if !ok {
					t.Fatalf("%s: no bootstrap script", ud.name)
				}
				// Every unit written is enabled at first boot.
				for _, f := range ud.cfg.WriteFiles {
					dir, base := filepath.Split(f.Path)
					if dir != "/etc/systemd/system/" || !strings.HasSuffix(base, ".service") {
						continue
					}
					if !regexp.MustCompile(`(?m)^systemctl enable .*\b` + regexp.QuoteMeta(base) + `\b`).MatchString(boot.Content) {
						t.Errorf("%s: %s is written but never enabled by the bootstrap script", ud.name, base)
					}
				}
				for _, f := range ud.cfg.WriteFiles {
					mode, err := f.Mode()
					if err != nil {
						t.Error(err)
						continue
					}
					if f.Owner != "root:root" {
						t.Errorf("%s %s: owner %s, want root:root", ud.name, f.Path, f.Owner)
					}
					if strings.HasPrefix(f.Content, "#!") != (mode&0o111 != 0) {
						t.Errorf("%s %s: mode %v, want executable exactly when it has a #! line", ud.name, f.Path, mode)
					}
				}
			}
		})
	}
}

// secretFiles lists, per sentinel secret, the files allowed to hold it.
func TestSecretsOnlyInRootOnlyEnvironmentFiles(t *testing.T) {
	for _, tt := range []struct {
		create bool
		// where maps each secret to the user data files holding it
		// ("member:/path", "monitoring:/path").
		where map[string][]string
	}{
		{true, map[string][]string{
			agentSecret:    {"monitoring:/etc/tidepool/exoscale.env"},
			operatorSecret: nil, // the operator's key never reaches an instance
			drainToken:     {"member:/etc/tidepool/drain.env", "monitoring:/etc/tidepool/drain.env"},
			grafanaPass:    {"monitoring:/etc/tidepool/grafana.env"},
			webhookToken:   {"monitoring:/etc/tidepool/autoscaler.env", "monitoring:/etc/tidepool/grafana.env"},
		}},
		{false, map[string][]string{
			agentSecret:    nil,
			operatorSecret: {"monitoring:/etc/tidepool/exoscale.env"},
			drainToken:     {"member:/etc/tidepool/drain.env", "monitoring:/etc/tidepool/drain.env"},
			grafanaPass:    {"monitoring:/etc/tidepool/grafana.env"},
			webhookToken:   {"monitoring:/etc/tidepool/autoscaler.env", "monitoring:/etc/tidepool/grafana.env"},
		}},
	} {
		t.Run(fmt.Sprintf("create_agent_api_key=%v", tt.create), func(t *testing.T) {
			member, mon := renderUserData(t, map[string]cty.Value{"create_agent_api_key": cty.BoolVal(tt.create)})
			for secret, want := range tt.where {
				var got []string
				occurrences := 0
				for _, ud := range []userData{member, mon} {
					occurrences += strings.Count(ud.text, secret)
					for _, f := range ud.cfg.WriteFiles {
						if strings.Contains(f.Content, secret) {
							got = append(got, ud.name+":"+f.Path)
							if f.Permissions != "0600" || f.Owner != "root:root" {
								t.Errorf("%s %s holds a secret with owner %s mode %s, want root:root 0600", ud.name, f.Path, f.Owner, f.Permissions)
							}
						}
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("secret %.8s... is in %v, want only %v", secret, got, want)
				}
				if occurrences != len(want) {
					t.Errorf("secret %.8s... occurs %d times in the user data, want %d (once per file)", secret, occurrences, len(want))
				}
			}
			// The environment files give back exactly the values, as systemd
			// reads them.
			wantKey, wantSecret := agentKey, agentSecret
			if !tt.create {
				wantKey, wantSecret = operatorKey, operatorSecret
			}
			env := envFile(t, mon, "/etc/tidepool/exoscale.env")
			for k, want := range map[string]string{
				"EXOSCALE_KEY": wantKey, "EXOSCALE_SECRET": wantSecret,
				"EXOSCALE_ZONE": "ch-gva-2", "EXOSCALE_INSTANCEPOOL_ID": poolID,
			} {
				if env[k] != want {
					t.Errorf("exoscale.env %s = %q, want %q", k, env[k], want)
				}
			}
			if got := envFile(t, member, "/etc/tidepool/drain.env")["TIDEPOOL_APP_DRAIN_TOKEN"]; got != drainToken {
				t.Errorf("member drain token = %q, want %q", got, drainToken)
			}
			if got := envFile(t, mon, "/etc/tidepool/grafana.env")["GF_SECURITY_ADMIN_PASSWORD"]; got != grafanaPass {
				t.Errorf("Grafana admin password = %q, want %q", got, grafanaPass)
			}
			// The webhook token reaches both senders and the autoscaler.
			for _, f := range []string{"/etc/tidepool/autoscaler.env", "/etc/tidepool/grafana.env"} {
				if got := envFile(t, mon, f)["TIDEPOOL_AUTOSCALER_AUTH_TOKEN"]; got != webhookToken {
					t.Errorf("%s TIDEPOOL_AUTOSCALER_AUTH_TOKEN = %q, want %q", f, got, webhookToken)
				}
			}
			// Scripts never trace commands (which would log secrets) and stop
			// on the first error.
			for _, ud := range []userData{member, mon} {
				for _, f := range ud.cfg.WriteFiles {
					if !strings.HasPrefix(f.Content, "#!/bin/bash\n") {
						continue
					}
					if regexp.MustCompile(`set -[a-z]*x|xtrace|bash -x`).MatchString(f.Content) {
						t.Errorf("%s %s traces commands", ud.name, f.Path)
					}
					if !strings.Contains(f.Content, "\nset -euo pipefail\n") {
						t.Errorf("%s %s lacks set -euo pipefail", ud.name, f.Path)
					}
				}
			}
		})
	}
}

func envFile(t *testing.T, ud userData, path string) map[string]string {
	t.Helper()
	f, ok := ud.cfg.File(path)
	if !ok {
		t.Fatalf("%s: no %s", ud.name, path)
	}
	env, err := ParseEnvFile(f.Content)
	if err != nil {
		t.Fatalf("%s %s: %v", ud.name, path, err)
	}
	return env
}

func TestScriptsParse(t *testing.T) {
	member, mon := renderUserData(t, nil)
	shellcheck, _ := exec.LookPath("shellcheck")
	if shellcheck == "" {
		t.Log("shellcheck not installed: scripts checked with bash -n only")
	}
	for _, ud := range []userData{member, mon} {
		for _, f := range ud.cfg.WriteFiles {
			if !strings.HasPrefix(f.Content, "#!/bin/bash\n") {
				continue
			}
			t.Run(ud.name+f.Path, func(t *testing.T) {
				p := filepath.Join(t.TempDir(), filepath.Base(f.Path))
				if err := os.WriteFile(p, []byte(f.Content), 0o755); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
					t.Errorf("bash -n: %v\n%s", err, out)
				}
				if shellcheck != "" {
					if out, err := exec.Command(shellcheck, "--severity=warning", p).CombinedOutput(); err != nil {
						t.Errorf("shellcheck: %v\n%s", err, out)
					}
				}
			})
		}
	}
}

// units returns the systemd units and drop-ins of a user data, parsed, by
// path.
func units(t *testing.T, ud userData) map[string]*Unit {
	t.Helper()
	out := map[string]*Unit{}
	for _, f := range ud.cfg.WriteFiles {
		if !strings.HasPrefix(f.Path, "/etc/systemd/system/") {
			continue
		}
		u, err := ParseUnit(f.Content)
		if err != nil {
			t.Fatalf("%s %s: %v", ud.name, f.Path, err)
		}
		out[f.Path] = u
	}
	return out
}

func TestUnitsAreWellFormed(t *testing.T) {
	member, mon := renderUserData(t, nil)
	want := map[string][]string{
		"member": {"tidepool-app.service", "tidepool-metadata-guard.service"},
		"monitoring": {"grafana-server.service.d/tidepool.conf", "prometheus-alertmanager.service.d/tidepool.conf",
			"tidepool-autoscaler.service", "tidepool-discover.service", "tidepool-metadata-guard.service", "tidepool-monitoring-config.service"},
	}
	for _, ud := range []userData{member, mon} {
		us := units(t, ud)
		var got []string
		for p, u := range us {
			got = append(got, strings.TrimPrefix(p, "/etc/systemd/system/"))
			if strings.Contains(p, ".service.d/") {
				continue
			}
			for _, sec := range []string{"Unit", "Service", "Install"} {
				if !slices.ContainsFunc(u.Sections, func(s UnitSection) bool { return s.Name == sec }) {
					t.Errorf("%s %s: no [%s] section", ud.name, p, sec)
				}
			}
			if len(u.Values("Service", "ExecStart")) == 0 {
				t.Errorf("%s %s: no ExecStart", ud.name, p)
			}
			if v, _ := u.Value("Install", "WantedBy"); v != "multi-user.target" {
				t.Errorf("%s %s: WantedBy=%q, want multi-user.target", ud.name, p, v)
			}
			for _, line := range u.Values("Service", "ExecStart") {
				if _, err := ParseCommand(line); err != nil {
					t.Errorf("%s %s: %v", ud.name, p, err)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want[ud.name]) {
			t.Errorf("%s units = %v, want %v", ud.name, got, want[ud.name])
		}
		// Long-running tidepool services run unprivileged.
		for p, u := range us {
			exec, _ := u.Value("Service", "ExecStart")
			if !strings.HasPrefix(exec, "/usr/local/bin/tidepool ") || strings.Contains(exec, " monitoring render ") {
				continue
			}
			if user, _ := u.Value("Service", "User"); user != "tidepool" {
				t.Errorf("%s %s: User=%q, want tidepool", ud.name, p, user)
			}
			if v, _ := u.Value("Service", "NoNewPrivileges"); v != "yes" {
				t.Errorf("%s %s: NoNewPrivileges=%q, want yes", ud.name, p, v)
			}
		}
	}
}

// TestUnitsPassSystemdAnalyzeVerify runs systemd-analyze verify on every unit
// and drop-in, with the executables they name in place: in a private mount
// namespace, /usr/local/bin holds the freshly built tidepool and
// /usr/local/sbin the scripts from the user data. Drop-ins are verified on top
// of the installed package unit when this machine has it, else on a stand-in.
func TestUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: units only checked structurally (TestUnitsAreWellFormed)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not installed: cannot put the executables in place for systemd-analyze verify")
	}
	if out, err := exec.Command(unshare, "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("no private mount namespace here (%v: %s): units only checked structurally", err, bytes.TrimSpace(out))
	}
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	member, mon := renderUserData(t, nil)
	for _, ud := range []userData{member, mon} {
		t.Run(ud.name, func(t *testing.T) {
			stage := t.TempDir()
			unitDir := filepath.Join(stage, "units")
			for _, d := range []string{unitDir, filepath.Join(stage, "bin"), filepath.Join(stage, "sbin")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := copyFile(bin, filepath.Join(stage, "bin", "tidepool")); err != nil {
				t.Fatal(err)
			}
			var toVerify []string
			for _, f := range ud.cfg.WriteFiles {
				switch {
				case strings.HasPrefix(f.Path, "/usr/local/sbin/"):
					if err := os.WriteFile(filepath.Join(stage, "sbin", filepath.Base(f.Path)), []byte(f.Content), 0o755); err != nil {
						t.Fatal(err)
					}
				case strings.HasPrefix(f.Path, "/etc/systemd/system/"):
					rel := strings.TrimPrefix(f.Path, "/etc/systemd/system/")
					dst := filepath.Join(unitDir, rel)
					if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(dst, []byte(f.Content), 0o644); err != nil {
						t.Fatal(err)
					}
					base := rel
					if d, _, ok := strings.Cut(rel, ".d/"); ok {
						base = d
					}
					if !slices.Contains(toVerify, base) {
						toVerify = append(toVerify, base)
					}
				}
			}
			// Package units the drop-ins extend.
			for _, name := range toVerify {
				dst := filepath.Join(unitDir, name)
				if _, err := os.Stat(dst); err == nil {
					continue
				}
				if err := copyFile(filepath.Join("/lib/systemd/system", name), dst); err != nil {
					stub := "[Unit]\nDescription=stand-in for the package's " + name + "\n[Service]\nExecStart=/bin/true\n"
					if err := os.WriteFile(dst, []byte(stub), 0o644); err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: not installed here, drop-in verified on a stand-in unit", name)
				}
			}
			var paths []string
			for _, name := range toVerify {
				paths = append(paths, filepath.Join(unitDir, name))
			}
			script := `set -e
mount -t tmpfs tmpfs /usr/local/bin
mount -t tmpfs tmpfs /usr/local/sbin
cp -p "$STAGE"/bin/* /usr/local/bin/
cp -p "$STAGE"/sbin/* /usr/local/sbin/
exec "$ANALYZE" verify --man=no "$@"`
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "verify"}, paths...)...)
			cmd.Env = append(os.Environ(), "STAGE="+stage, "ANALYZE="+analyze, "SYSTEMD_LOG_COLOR=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze verify %v: %v\n%s", toVerify, err, out)
			}
			// verify exits 0 on warnings such as unknown keys: any message
			// about our files is a failure.
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if strings.Contains(line, unitDir) || slices.ContainsFunc(toVerify, func(n string) bool { return strings.HasPrefix(line, n+":") }) {
					t.Errorf("systemd-analyze verify: %s", line)
				}
			}
			t.Logf("systemd-analyze verify %v: ok", toVerify)
		})
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, fi.Mode().Perm())
}

// unitEnv is the environment systemd gives a unit's processes: its
// Environment= assignments and the contents of its EnvironmentFile= files,
// taken from the user data (or, for files the bootstrap script writes, from
// that script's printf line).
func unitEnv(t *testing.T, ud userData, u *Unit) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, path := range u.Values("Service", "EnvironmentFile") {
		path = strings.TrimPrefix(path, "-")
		var vars map[string]string
		if f, ok := ud.cfg.File(path); ok {
			var err error
			if vars, err = ParseEnvFile(f.Content); err != nil {
				t.Fatalf("%s %s: %v", ud.name, path, err)
			}
		} else {
			boot, _ := ud.cfg.File("/usr/local/sbin/tidepool-bootstrap")
			m := regexp.MustCompile(`printf '([A-Z_][A-Z0-9_]*)=%s\\n' .*>` + regexp.QuoteMeta(path)).FindStringSubmatch(boot.Content)
			if m == nil {
				t.Fatalf("%s: EnvironmentFile %s is neither in write_files nor written by the bootstrap script", ud.name, path)
			}
			vars = map[string]string{m[1]: "i-placeholder"}
		}
		for k, v := range vars {
			env[k] = v
		}
	}
	for _, a := range u.Values("Service", "Environment") {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			t.Fatalf("%s: Environment=%s is not KEY=VALUE", ud.name, a)
		}
		env[k] = v
	}
	return env
}

// TestUnitCommandsMatchTidepool runs every tidepool command line of the units
// through the real binary's flag parsing, with the unit's environment and -h
// appended: an unknown flag, an unknown or misspelt setting the binary would
// ignore, or a value it cannot parse fails here instead of on the instance.
func TestUnitCommandsMatchTidepool(t *testing.T) {
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	member, mon := renderUserData(t, nil)
	for _, ud := range []userData{member, mon} {
		for path, u := range units(t, ud) {
			for _, line := range u.Values("Service", "ExecStart") {
				c, err := ParseCommand(line)
				if err != nil {
					t.Fatalf("%s %s: %v", ud.name, path, err)
				}
				if c.Path != "/usr/local/bin/tidepool" {
					continue
				}
				t.Run(ud.name+"/"+filepath.Base(path), func(t *testing.T) {
					env := unitEnv(t, ud, u)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					cmd := exec.CommandContext(ctx, bin, append(slices.Clone(c.Args), "-h")...)
					cmd.Env = []string{"PATH=/usr/bin:/bin"}
					for k, v := range env {
						cmd.Env = append(cmd.Env, k+"="+v)
					}
					out, err := cmd.CombinedOutput()
					if err != nil {
						t.Fatalf("tidepool %s -h with the unit's environment: %v\n%s", strings.Join(c.Args, " "), err, out)
					}
					// Every variable the unit sets is one the subcommand reads.
					known := map[string]bool{}
					for _, m := range regexp.MustCompile(`\[env ([^\]]+)\]`).FindAllStringSubmatch(string(out), -1) {
						for _, name := range strings.Split(m[1], ", ") {
							known[name] = true
						}
					}
					for k := range env {
						if !known[k] {
							t.Errorf("%s sets %s, which tidepool %s does not read", path, k, c.Args[0])
						}
					}
				})
			}
		}
	}
}

// TestMonitoringConfigFromUserData renders the monitoring configuration with
// exactly the command line tidepool-monitoring-config.service runs, installs
// it with the instance's install script into a scratch root, checks the
// installed files with promtool and amtool, and checks that the addresses in
// them are the ones the other units and the Terraform module use.
func TestMonitoringConfigFromUserData(t *testing.T) {
	promtool := requireTool(t, "promtool")
	amtool := requireTool(t, "amtool")
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	e := evaluate(t, map[string]cty.Value{"pool_min_size": cty.NumberIntVal(2), "pool_max_size": cty.NumberIntVal(9)})
	member, mon := renderUserData(t, map[string]cty.Value{"pool_min_size": cty.NumberIntVal(2), "pool_max_size": cty.NumberIntVal(9)})
	monUnits := units(t, mon)
	cmdOf := func(ud userData, us map[string]*Unit, name string, i int) Command {
		t.Helper()
		u := us["/etc/systemd/system/"+name]
		if u == nil {
			t.Fatalf("%s: no unit %s", ud.name, name)
		}
		lines := u.Values("Service", "ExecStart")
		if len(lines) <= i {
			t.Fatalf("%s: ExecStart #%d missing", name, i)
		}
		c, err := ParseCommand(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Render exactly as the unit does, into a scratch --out.
	render := cmdOf(mon, monUnits, "tidepool-monitoring-config.service", 0)
	if render.Path != "/usr/local/bin/tidepool" || len(render.Args) < 2 || render.Args[0] != "monitoring" || render.Args[1] != "render" {
		t.Fatalf("first ExecStart = %s %v, want tidepool monitoring render", render.Path, render.Args)
	}
	outDir, _ := Flag(render.Args, "out")
	installCmd := cmdOf(mon, monUnits, "tidepool-monitoring-config.service", 1)
	if installCmd.Path != "/usr/local/sbin/tidepool-install-monitoring" || !slices.Equal(installCmd.Args, []string{outDir}) {
		t.Fatalf("second ExecStart = %s %v, want tidepool-install-monitoring %s", installCmd.Path, installCmd.Args, outDir)
	}
	scratch := t.TempDir()
	rendered, root := filepath.Join(scratch, "rendered"), filepath.Join(scratch, "root")
	args := slices.Clone(render.Args)
	for i := range args {
		if args[i] == outDir && i > 0 && strings.TrimLeft(args[i-1], "-") == "out" {
			args[i] = rendered
		}
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("tidepool %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	// Install with the instance's own script.
	installScript, ok := mon.cfg.File("/usr/local/sbin/tidepool-install-monitoring")
	if !ok {
		t.Fatal("no tidepool-install-monitoring")
	}
	script := filepath.Join(scratch, "tidepool-install-monitoring")
	if err := os.WriteFile(script, []byte(installScript.Content), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, rendered)
	cmd.Env = append(os.Environ(), "DESTDIR="+root, "PATH="+filepath.Dir(promtool)+":"+filepath.Dir(amtool)+":/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tidepool-install-monitoring: %v\n%s", err, out)
	}

	// The installed files pass the real checkers where the services read them.
	inRoot := func(p string) string { return filepath.Join(root, p) }
	for _, c := range [][]string{
		{promtool, "check", "config", inRoot("/etc/prometheus/prometheus.yml")},
		{promtool, "check", "rules", inRoot("/etc/prometheus/rules.yml")},
		{amtool, "check-config", inRoot("/etc/prometheus/alertmanager.yml")},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	testRules := exec.Command(promtool, "test", "rules", monitoring.FileRulesTest)
	testRules.Dir = rendered
	if out, err := testRules.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
	for _, p := range []string{
		"/etc/grafana/provisioning/datasources/tidepool.yml",
		"/etc/grafana/provisioning/dashboards/tidepool.yml",
		"/etc/grafana/provisioning/alerting/rules.yml",
		"/etc/grafana/provisioning/alerting/contact-points.yml",
		"/etc/grafana/provisioning/alerting/policies.yml",
		"/var/lib/grafana/dashboards/tidepool.json",
	} {
		if _, err := os.Stat(inRoot(p)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}

	// Wiring: every address in the configuration is the one its peer uses.
	discoverCmd := cmdOf(mon, monUnits, "tidepool-discover.service", 0)
	autoscalerCmd := cmdOf(mon, monUnits, "tidepool-autoscaler.service", 0)
	memberUnits := units(t, member)
	appCmd := cmdOf(member, memberUnits, "tidepool-app.service", 0)
	discoverEnv := unitEnv(t, mon, monUnits["/etc/systemd/system/tidepool-discover.service"])
	autoscalerEnv := unitEnv(t, mon, monUnits["/etc/systemd/system/tidepool-autoscaler.service"])
	amEnv := envFile(t, mon, "/etc/tidepool/alertmanager.env")
	amListen, _ := Flag(strings.Fields(amEnv["ARGS"]), "web.listen-address")
	fileSD, _ := Flag(discoverCmd.Args, "output")
	discoverListen, _ := Flag(discoverCmd.Args, "http-sd-listen")
	autoscalerListen := autoscalerEnv["LISTEN_PORT"]
	appListen, _ := Flag(appCmd.Args, "listen")
	nodePort := discoverEnv["TARGET_PORT"]
	targetPort := attrValue(t, e, "exoscale_nlb_service.app", "target_port").AsBigFloat().String()

	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
			}
		}
		ScrapeConfigs []struct {
			JobName       string                         `yaml:"job_name"`
			StaticConfigs []struct{ Targets []string }   `yaml:"static_configs"`
			FileSDConfigs []struct{ Files []string }     `yaml:"file_sd_configs"`
			Relabel       []struct{ Replacement string } `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, inRoot("/etc/prometheus/prometheus.yml"), &prom)
	checks := []struct{ what, got, want string }{
		{"alertmanager target", fmt.Sprint(prom.Alerting.Alertmanagers[0].StaticConfigs[0].Targets), fmt.Sprint([]string{amListen})},
		{"app port (unit vs NLB target)", strings.TrimPrefix(appListen, ":"), targetPort},
		{"profile", mustFlag(t, render.Args, "profile"), "seed"},
		{"autoscaler tick vs seed profile", durationString(t, mustFlag(t, autoscalerCmd.Args, "tick")), monitoring.Seed().AutoscalerTick.String()},
		{"autoscaler --min", mustFlag(t, autoscalerCmd.Args, "min"), "2"},
		{"autoscaler --max", mustFlag(t, autoscalerCmd.Args, "max"), "9"},
		{"autoscaler --nlb-id", mustFlag(t, autoscalerCmd.Args, "nlb-id"), nlbID},
		{"autoscaler --nlb-service-id", mustFlag(t, autoscalerCmd.Args, "nlb-service-id"), nlbServiceID},
		{"autoscaler --app-port", mustFlag(t, autoscalerCmd.Args, "app-port"), targetPort},
		{"autoscaler listens on loopback", strings.Split(autoscalerListen, ":")[0], "127.0.0.1"},
		{"discover listens on loopback", strings.Split(discoverListen, ":")[0], "127.0.0.1"},
		{"alertmanager listens on loopback", strings.Split(amListen, ":")[0], "127.0.0.1"},
	}
	jobs := map[string]bool{}
	for _, j := range prom.ScrapeConfigs {
		jobs[j.JobName] = true
		switch j.JobName {
		case "node", "app":
			port := nodePort
			if j.JobName == "app" {
				port = strings.TrimPrefix(appListen, ":")
			}
			checks = append(checks,
				struct{ what, got, want string }{j.JobName + " file_sd", fmt.Sprint(j.FileSDConfigs[0].Files), fmt.Sprint([]string{fileSD})},
				struct{ what, got, want string }{j.JobName + " port", j.Relabel[len(j.Relabel)-1].Replacement, "${1}:" + port})
		case "discover":
			checks = append(checks, struct{ what, got, want string }{"discover target", fmt.Sprint(j.StaticConfigs[0].Targets), fmt.Sprint([]string{discoverListen})})
		case "autoscaler":
			checks = append(checks, struct{ what, got, want string }{"autoscaler target", fmt.Sprint(j.StaticConfigs[0].Targets), fmt.Sprint([]string{autoscalerListen})})
		}
	}
	for _, j := range []string{"node", "app", "discover", "autoscaler"} {
		if !jobs[j] {
			t.Errorf("prometheus.yml has no %s job", j)
		}
	}
	// Webhooks carry the autoscaler's token on both alerting paths:
	// Alertmanager from the file the bootstrap writes from the autoscaler's
	// own environment file, Grafana from its environment.
	tokenFile := mustFlag(t, render.Args, "autoscaler-token-file")
	if got := autoscalerEnv["TIDEPOOL_AUTOSCALER_AUTH_TOKEN"]; got != webhookToken {
		t.Errorf("the autoscaler's TIDEPOOL_AUTOSCALER_AUTH_TOKEN = %q, want the webhook token", got)
	}
	if bootstrap, ok := mon.cfg.File("/usr/local/sbin/tidepool-bootstrap"); !ok ||
		!strings.Contains(bootstrap.Content, ". /etc/tidepool/autoscaler.env") || !strings.Contains(bootstrap.Content, ">"+tokenFile+"\n") ||
		!strings.Contains(bootstrap.Content, "chgrp prometheus "+tokenFile+"\n") {
		t.Errorf("the bootstrap does not write %s from autoscaler.env for the prometheus group", tokenFile)
	}
	var am struct {
		Receivers []struct {
			Name           string
			WebhookConfigs []struct {
				HTTPConfig struct {
					Authorization struct {
						Type            string
						CredentialsFile string `yaml:"credentials_file"`
					}
				} `yaml:"http_config"`
			} `yaml:"webhook_configs"`
		}
	}
	readYAML(t, inRoot("/etc/prometheus/alertmanager.yml"), &am)
	for _, r := range am.Receivers {
		for _, w := range r.WebhookConfigs {
			if a := w.HTTPConfig.Authorization; a.Type != "Bearer" || a.CredentialsFile != tokenFile {
				t.Errorf("alertmanager receiver %s: authorization %+v, want Bearer from %s", r.Name, a, tokenFile)
			}
		}
	}
	cps, err := os.ReadFile(inRoot("/etc/grafana/provisioning/alerting/contact-points.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(cps), "authorization_credentials: $TIDEPOOL_AUTOSCALER_AUTH_TOKEN\n"); n != 2 {
		t.Errorf("Grafana contact points: %d send $TIDEPOOL_AUTOSCALER_AUTH_TOKEN, want 2", n)
	}
	if got := unitEnv(t, mon, monUnits["/etc/systemd/system/grafana-server.service.d/tidepool.conf"])["TIDEPOOL_AUTOSCALER_AUTH_TOKEN"]; got != webhookToken {
		t.Errorf("Grafana's TIDEPOOL_AUTOSCALER_AUTH_TOKEN = %q, want the webhook token", got)
	}

	// Webhooks reach the autoscaler where it listens, from both alerting paths.
	webhookRE := regexp.MustCompile(`url: "([^"]+)"`)
	for _, p := range []string{"/etc/prometheus/alertmanager.yml", "/etc/grafana/provisioning/alerting/contact-points.yml"} {
		b, err := os.ReadFile(inRoot(p))
		if err != nil {
			t.Fatal(err)
		}
		urls := webhookRE.FindAllStringSubmatch(string(b), -1)
		if len(urls) != 2 {
			t.Errorf("%s: %d webhook URLs, want 2 (up and down)", p, len(urls))
		}
		for _, u := range urls {
			if !strings.HasPrefix(u[1], "http://"+autoscalerListen+"/") {
				t.Errorf("%s: webhook %s, want it on the autoscaler's %s", p, u[1], autoscalerListen)
			}
		}
	}
	var ds struct{ Datasources []struct{ URL string } }
	readYAML(t, inRoot("/etc/grafana/provisioning/datasources/tidepool.yml"), &ds)
	promPort := e.Locals["prometheus_port"].AsBigFloat().String()
	checks = append(checks, struct{ what, got, want string }{"Grafana datasource", ds.Datasources[0].URL, "http://127.0.0.1:" + promPort})
	var dash struct {
		Providers []struct{ Options struct{ Path string } }
	}
	readYAML(t, inRoot("/etc/grafana/provisioning/dashboards/tidepool.yml"), &dash)
	checks = append(checks, struct{ what, got, want string }{"dashboard provider path", dash.Providers[0].Options.Path, "/var/lib/grafana/dashboards"})
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
}

func mustFlag(t *testing.T, args []string, name string) string {
	t.Helper()
	v, ok := Flag(args, name)
	if !ok {
		t.Fatalf("no --%s in %v", name, args)
	}
	return v
}

func durationString(t *testing.T, s string) string {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// loopbackListener listens on a random 127.x.y.z address so that parallel
// test packages do not collide.
func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := loopback.Listen()
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestInstallBinaryScript runs the instances' download script against a local
// release server: it installs the binary only when the SHA-256 matches.
func TestInstallBinaryScript(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	release := []byte("#!/bin/sh\necho fake tidepool release\n")
	sum := sha256.Sum256(release)
	goodSHA := hex.EncodeToString(sum[:])
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/releases/"+releaseVer+"/tidepool-linux-amd64" {
			http.NotFound(w, r)
			return
		}
		w.Write(release)
	}))
	srv.Listener = loopbackListener(t)
	srv.Start()
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		url     string
		sha     string
		wantErr string // in stderr; "" means success
	}{
		{"checksum matches", srv.URL + "/releases/{version}/tidepool-linux-amd64", goodSHA, ""},
		{"checksum differs", srv.URL + "/releases/{version}/tidepool-linux-amd64", strings.Repeat("0", 64), "want " + strings.Repeat("0", 64)},
		{"not found", srv.URL + "/releases/{version}/missing", goodSHA, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Rendered through the module, bypassing the https-only variable
			// validation for the local server.
			member, _ := renderUserData(t, map[string]cty.Value{
				"tidepool_release_url": cty.StringVal(tt.url),
				"tidepool_sha256":      cty.StringVal(tt.sha),
			})
			f, ok := member.cfg.File("/usr/local/sbin/tidepool-install-binary")
			if !ok {
				t.Fatal("no tidepool-install-binary")
			}
			dir := t.TempDir()
			script := filepath.Join(dir, "tidepool-install-binary")
			if err := os.WriteFile(script, []byte(f.Content), 0o755); err != nil {
				t.Fatal(err)
			}
			binDir := filepath.Join(dir, "bin")
			dest := filepath.Join(binDir, "tidepool")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, script)
			cmd.Env = append(os.Environ(), "DEST="+dest)
			out, err := cmd.CombinedOutput()
			entries, _ := os.ReadDir(binDir)
			var left []string
			for _, en := range entries {
				left = append(left, en.Name())
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("install failed: %v\n%s", err, out)
				}
				got, err := os.ReadFile(dest)
				if err != nil || !bytes.Equal(got, release) {
					t.Fatalf("installed %q (%v), want the release", got, err)
				}
				if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o755 {
					t.Errorf("mode %v, want 0755", fi.Mode().Perm())
				}
				if !slices.Equal(left, []string{"tidepool"}) {
					t.Errorf("files left in %s: %v, want only tidepool", binDir, left)
				}
				return
			}
			if err == nil {
				t.Fatalf("install succeeded, want failure with %q\n%s", tt.wantErr, out)
			}
			if !strings.Contains(string(out), tt.wantErr) {
				t.Errorf("output %q does not mention %q", out, tt.wantErr)
			}
			if len(left) != 0 {
				t.Errorf("files left in %s after a failed install: %v", binDir, left)
			}
		})
	}
}
