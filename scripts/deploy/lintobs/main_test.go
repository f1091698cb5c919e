package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's own rules and dashboards pass.
func TestRepositoryFiles(t *testing.T) {
	root := "../../.."
	problems, err := lint(filepath.Join(root, "scripts/deploy/prometheus"), filepath.Join(root, "scripts/deploy/grafana"),
		filepath.Join(root, "doc/runbook.md"), filepath.Join(root, "doc/observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("problems:\n%s", strings.Join(problems, "\n"))
	}
}

// Each mistake lintobs exists for is reported.
func TestFindsMistakes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runbook := write("runbook.md", "# Runbook\n## Outbox backlog\n```\n## not a heading\n```\n## `gpuaas dev` after a crash\n")
	metrics := write("obs.md", "| `gpuaas_outbox_pending_events` | `gpuaas_db_pool_*` |\n")
	write("rules/a.rules.yaml", `groups:
  - name: g
    rules:
      - record: gpuaas:lag
        expr: max(gpuaas_outbox_pending_events)
      - alert: Good
        expr: gpuaas:lag > 1 and gpuaas_db_pool_idle_connections > 0
        labels: {severity: page}
        annotations: {summary: s, runbook: "doc/runbook.md#outbox-backlog"}
      - alert: Crash
        expr: gpuaas:lag > 1
        labels: {severity: page}
        annotations: {summary: s, runbook: "doc/runbook.md#gpuaas-dev-after-a-crash"}
      - alert: NoSection
        expr: gpuaas:lag > 1
        labels: {severity: page}
        annotations: {summary: s, runbook: "doc/runbook.md#not-a-heading"}
      - alert: NoRunbook
        expr: gpuaas:nope > 1
        labels: {severity: urgent}
        annotations: {summary: s}
      - alert: Renamed
        expr: gpuaas_outbox_pending > 1
        labels: {severity: page}
        annotations: {summary: s, runbook: "doc/runbook.md#outbox-backlog"}
`)
	write("dash/a.json", `{"uid":"a","title":"A","schemaVersion":39,"panels":[
  {"id":1,"type":"timeseries","title":"ok","gridPos":{"w":8,"h":6},"datasource":{"uid":"x"},"targets":[{"expr":"gpuaas_outbox_pending_events"}]},
  {"id":1,"type":"timeseries","title":"dup id and no query","gridPos":{"w":8,"h":6},"targets":[]},
  {"id":3,"type":"stat","title":"blank","gridPos":{"w":8,"h":6},"datasource":{"uid":"x"},"targets":[{"expr":" "}]}]}`)
	write("dash/b.json", `{"uid":"a","title":"B","schemaVersion":39,"panels":[]}`)
	write("dash/c.json", `{"uid":`)
	problems, err := lint(filepath.Join(dir, "rules"), filepath.Join(dir, "dash"), runbook, metrics)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		"alert NoSection: runbook section #not-a-heading is not in",
		"alert NoRunbook: no runbook annotation",
		"alert NoRunbook: severity must be page or ticket",
		"gpuaas:nope is no recording rule",
		"gpuaas_outbox_pending is not a family",
		`panel "dup id and no query": id 1 used twice`,
		`panel "dup id and no query": no query`,
		`panel "blank": a target without expr`,
		`uid "a" is also`,
		"b.json: no panels",
		"c.json: not a dashboard",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("not reported: %s", want)
		}
	}
	for _, unwanted := range []string{"alert Good", "alert Crash", `panel "ok"`} {
		if strings.Contains(all, unwanted) {
			t.Errorf("reported a good one: %s", unwanted)
		}
	}
	if t.Failed() {
		t.Log(all)
	}
}
