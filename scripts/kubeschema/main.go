// Command kubeschema writes the JSON schemas kubeconform validates against,
// offline, from the Kubernetes OpenAPI document in the k8s.io/kubernetes Go
// module (the one registry CI reaches is the Go module proxy; kubeconform's
// default schema location is a web site).
//
//	go run ./scripts/kubeschema -version v1.34.3 -out DIR
//
// It writes DIR/<kind>[-<group>]-<version>.json for every kind of the
// document — kubeconform's file names ({{ .ResourceKind }}{{ .KindSuffix }})
// — each a standalone, strict schema: the kind's definition and those it
// references, objects closed to unknown fields (additionalProperties:
// false, as kubeconform's -strict schemas are), int-or-string and quantity
// values accepting a number or a string as the API server does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	version := flag.String("version", "v1.34.3", "k8s.io/kubernetes module version whose api/openapi-spec/swagger.json is read")
	swagger := flag.String("swagger", "", "read this swagger.json instead of the module's")
	out := flag.String("out", "", "output directory (required)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "kubeschema: -out is required")
		os.Exit(2)
	}
	if err := run(*version, *swagger, *out); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

func run(version, swagger, out string) error {
	if swagger == "" {
		dir, err := moduleDir("k8s.io/kubernetes@" + version)
		if err != nil {
			return err
		}
		swagger = filepath.Join(dir, "api", "openapi-spec", "swagger.json")
	}
	b, err := os.ReadFile(swagger)
	if err != nil {
		return err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", swagger, err)
	}
	for _, d := range doc.Definitions {
		fix(d)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n := 0
	for name, def := range doc.Definitions {
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			ver, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			if kind == "" || ver == "" {
				continue
			}
			file := strings.ToLower(kind)
			if group != "" {
				file += "-" + strings.ToLower(strings.Split(group, ".")[0])
			}
			file += "-" + strings.ToLower(ver) + ".json"
			schema := map[string]any{
				"$schema":     "http://json-schema.org/draft-07/schema#",
				"$ref":        "#/definitions/" + name,
				"definitions": closure(doc.Definitions, name),
			}
			body, err := json.Marshal(schema)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, file), body, 0o644); err != nil {
				return err
			}
			n++
		}
	}
	fmt.Printf("kubeschema: %d schemas from %s in %s\n", n, swagger, out)
	return nil
}

// moduleDir downloads (or finds in the module cache) a module and returns
// its directory.
func moduleDir(mod string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(b, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory", mod)
	}
	return info.Dir, nil
}

// fix makes one schema (recursively) strict and maps the API's own formats
// to what the API server accepts.
func fix(s map[string]any) {
	if f, _ := s["format"].(string); f == "int-or-string" {
		delete(s, "type")
		delete(s, "format")
		s["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		if _, set := s["additionalProperties"]; !set && s["x-kubernetes-preserve-unknown-fields"] != true {
			s["additionalProperties"] = false
		}
		for _, p := range props {
			if m, ok := p.(map[string]any); ok {
				fix(m)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if m, ok := s[k].(map[string]any); ok {
			fix(m)
		}
	}
}

// closure is the definition name and every definition it references,
// directly or not; quantities accept numbers too.
func closure(defs map[string]map[string]any, root string) map[string]any {
	out := map[string]any{}
	var visit func(name string)
	visit = func(name string) {
		if _, done := out[name]; done {
			return
		}
		d, ok := defs[name]
		if !ok {
			return
		}
		if name == "io.k8s.apimachinery.pkg.api.resource.Quantity" {
			out[name] = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
			return
		}
		out[name] = d
		for _, ref := range refs(d) {
			visit(strings.TrimPrefix(ref, "#/definitions/"))
		}
	}
	visit(root)
	return out
}

func refs(v any) []string {
	var found []string
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if r, ok := x[k].(string); k == "$ref" && ok {
				found = append(found, r)
				continue
			}
			found = append(found, refs(x[k])...)
		}
	case []any:
		for _, e := range x {
			found = append(found, refs(e)...)
		}
	}
	return found
}
