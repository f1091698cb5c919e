// Command lintobs checks the observability files under scripts/deploy/ (make
// deploy-check): every Prometheus alert rule names its severity, a summary
// and a runbook section that exists in doc/runbook.md; every Grafana
// dashboard is valid JSON with a unique uid, a title, and panels that each
// have a query; and every gpuaas_* metric a rule or a panel queries is a
// family doc/observability.md lists (a renamed metric fails here, not on a
// blank dashboard).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

func main() {
	rules := flag.String("rules", "scripts/deploy/prometheus", "folder of *.rules.yaml")
	dashboards := flag.String("dashboards", "scripts/deploy/grafana", "folder of dashboard *.json")
	runbook := flag.String("runbook", "doc/runbook.md", "the runbook alerts link to")
	metricsDoc := flag.String("metrics-doc", "doc/observability.md", "the page listing the metric families")
	flag.Parse()
	problems, err := lint(*rules, *dashboards, *runbook, *metricsDoc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lintobs:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "lintobs:", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Println("lintobs: ok")
}

// lint returns every problem found; err is for files that cannot be read.
func lint(rulesDir, dashboardsDir, runbookPath, metricsDocPath string) ([]string, error) {
	rb, err := os.ReadFile(runbookPath)
	if err != nil {
		return nil, err
	}
	anchors := Anchors(string(rb))
	doc, err := os.ReadFile(metricsDocPath)
	if err != nil {
		return nil, err
	}
	known := knownFamilies(string(doc))
	var problems []string
	ruleFiles, _ := filepath.Glob(filepath.Join(rulesDir, "*.rules.yaml"))
	if len(ruleFiles) == 0 {
		problems = append(problems, "no *.rules.yaml in "+rulesDir)
	}
	recorded := map[string]bool{}
	var exprs []expr
	alerts := map[string]string{}
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, expr{where: f + ": " + r.Record + r.Alert, text: r.Expr})
				if r.Record != "" {
					recorded[r.Record] = true
					continue
				}
				problems = append(problems, checkAlert(f, r, anchors, runbookPath)...)
				if prev, ok := alerts[r.Alert]; ok {
					problems = append(problems, fmt.Sprintf("%s: alert %s is also in %s", f, r.Alert, prev))
				}
				alerts[r.Alert] = f
			}
		}
	}
	dashFiles, _ := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if len(dashFiles) == 0 {
		problems = append(problems, "no dashboards (*.json) in "+dashboardsDir)
	}
	uids := map[string]string{}
	for _, f := range dashFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ps, es, uid := checkDashboard(f, b)
		problems = append(problems, ps...)
		exprs = append(exprs, es...)
		if uid != "" {
			if prev, ok := uids[uid]; ok {
				problems = append(problems, fmt.Sprintf("%s: uid %q is also %s's", f, uid, prev))
			}
			uids[uid] = f
		}
	}
	for _, e := range exprs {
		for _, m := range metricNames(e.text) {
			if strings.Contains(m, ":") {
				if !recorded[m] {
					problems = append(problems, fmt.Sprintf("%s: %s is no recording rule", e.where, m))
				}
				continue
			}
			if !known.has(m) {
				problems = append(problems, fmt.Sprintf("%s: %s is not a family doc/observability.md lists", e.where, m))
			}
		}
	}
	sort.Strings(problems)
	return problems, nil
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type expr struct{ where, text string }

var severities = map[string]bool{"page": true, "ticket": true}

func checkAlert(file string, r rule, anchors map[string]bool, runbookPath string) []string {
	var out []string
	where := file + ": alert " + r.Alert
	if !severities[r.Labels["severity"]] {
		out = append(out, where+": severity must be page or ticket")
	}
	if strings.TrimSpace(r.Annotations["summary"]) == "" {
		out = append(out, where+": no summary")
	}
	link := r.Annotations["runbook"]
	page, anchor, ok := strings.Cut(link, "#")
	switch {
	case link == "":
		out = append(out, where+": no runbook annotation")
	case !ok || anchor == "" || filepath.Base(page) != filepath.Base(runbookPath):
		out = append(out, fmt.Sprintf("%s: runbook %q must be %s#<section>", where, link, filepath.ToSlash(runbookPath)))
	case !anchors[anchor]:
		out = append(out, fmt.Sprintf("%s: runbook section #%s is not in %s", where, anchor, runbookPath))
	}
	return out
}

// Anchors are the ids GitHub gives a Markdown page's headings: lower case,
// spaces to hyphens, everything but letters, digits, hyphens and
// underscores dropped; a repeated heading gets -1, -2, ….
func Anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			out[fmt.Sprintf("%s-%d", id, n)] = true
		} else {
			out[id] = true
		}
		seen[id]++
	}
	return out
}

type panel struct {
	ID         *int                `json:"id"`
	Type       string              `json:"type"`
	Title      string              `json:"title"`
	GridPos    *struct{ W, H int } `json:"gridPos"`
	Datasource json.RawMessage     `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

func checkDashboard(file string, b []byte) (problems []string, exprs []expr, uid string) {
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		return []string{fmt.Sprintf("%s: not a dashboard: %v", file, err)}, nil, ""
	}
	if dec.More() {
		problems = append(problems, file+": data after the dashboard object")
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		problems = append(problems, file+": uid, title and schemaVersion are required")
	}
	if len(d.Panels) == 0 {
		problems = append(problems, file+": no panels")
	}
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("%s: panel %q", file, p.Title)
			if p.ID == nil {
				problems = append(problems, where+": no id")
			} else if ids[*p.ID] {
				problems = append(problems, fmt.Sprintf("%s: id %d used twice", where, *p.ID))
			} else {
				ids[*p.ID] = true
			}
			if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
				problems = append(problems, where+": no gridPos")
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Type == "" || p.Title == "" {
				problems = append(problems, where+": type and title are required")
			}
			if len(p.Targets) == 0 {
				problems = append(problems, where+": no query")
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					problems = append(problems, where+": a target without expr")
				}
				if len(t.Datasource) == 0 && len(p.Datasource) == 0 {
					problems = append(problems, where+": no datasource")
				}
				exprs = append(exprs, expr{where: where, text: t.Expr})
			}
		}
	}
	walk(d.Panels)
	return problems, exprs, d.UID
}

// families are the metric names a page lists: `gpuaas_…` in backticks, a
// trailing * standing for a prefix.
type families struct {
	names    map[string]bool
	prefixes []string
}

var familyRe = regexp.MustCompile("`(gpuaas_[a-z0-9_]+\\*?)`")

func knownFamilies(doc string) families {
	f := families{names: map[string]bool{}}
	for _, m := range familyRe.FindAllStringSubmatch(doc, -1) {
		if n, ok := strings.CutSuffix(m[1], "*"); ok {
			f.prefixes = append(f.prefixes, n)
		} else {
			f.names[m[1]] = true
		}
	}
	return f
}

func (f families) has(name string) bool {
	for _, suffix := range []string{"", "_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f.names[base] {
			return true
		}
		for _, p := range f.prefixes {
			if strings.HasPrefix(base, p) {
				return true
			}
		}
	}
	return false
}

var metricRe = regexp.MustCompile(`\bgpuaas[a-z0-9_:]*`)

// metricNames are the gpuaas metrics and recording rules an expression reads.
func metricNames(e string) []string {
	// Label values and strings may contain anything; drop quoted text.
	var b strings.Builder
	quoted := false
	for _, r := range e {
		if r == '"' {
			quoted = !quoted
			continue
		}
		if !quoted {
			b.WriteRune(r)
		}
	}
	return metricRe.FindAllString(b.String(), -1)
}
