package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gpuaas/gpuaas/testkit/e2e"
)

// fakePolicies is the admin policies API: GET lists, PUT sets; a PUT of
// refuse[key] is refused, and a token other than want is 401.
type fakePolicies struct {
	mu     sync.Mutex
	values map[string]string
	refuse string
	want   string
	puts   []string
}

func (f *fakePolicies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.want {
		http.Error(w, `{"error":{"code":"token_expired"}}`, http.StatusUnauthorized)
		return
	}
	switch r.Method {
	case "GET":
		var out struct {
			Policies []map[string]string `json:"policies"`
		}
		for k, v := range f.values {
			out.Policies = append(out.Policies, map[string]string{"key": k, "value": v})
		}
		_ = json.NewEncoder(w).Encode(out)
	case "PUT":
		var in struct{ Key, Value string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Key == f.refuse {
			http.Error(w, `{"error":{"code":"validation_failed"}}`, http.StatusBadRequest)
			return
		}
		f.values[in.Key] = in.Value
		f.puts = append(f.puts, in.Key+"="+in.Value)
		_, _ = w.Write([]byte(`{}`))
	}
}

func TestChangePoliciesPutsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := &fakePolicies{values: map[string]string{"billing.window_seconds": "60", "payments.min_topup_minor": "500", "other": "x"}, want: "t1"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	op := e2e.New(srv.URL)
	op.Token = "t1"
	relogins := 0
	relogin := func(context.Context) error { relogins++; op.Token = f.want; return nil }

	restore, err := changePolicies(ctx, op, []policyValue{{"billing.window_seconds", "2"}, {"payments.min_topup_minor", "1"}}, relogin)
	if err != nil {
		t.Fatal(err)
	}
	if f.values["billing.window_seconds"] != "2" || f.values["payments.min_topup_minor"] != "1" {
		t.Fatalf("not set: %v", f.values)
	}
	// The operator's token expires during the run: restore signs in again.
	f.mu.Lock()
	f.want = "t2"
	f.mu.Unlock()
	done, err := restore()
	if err != nil {
		t.Fatal(err)
	}
	if f.values["billing.window_seconds"] != "60" || f.values["payments.min_topup_minor"] != "500" || f.values["other"] != "x" || relogins != 1 {
		t.Fatalf("after restore: %v (relogins %d)", f.values, relogins)
	}
	if !strings.Contains(done, "billing.window_seconds=60") || !strings.Contains(done, "payments.min_topup_minor=500") {
		t.Fatalf("restore reported %q", done)
	}

	// A set that fails puts back what was already changed.
	f.refuse = "payments.min_topup_minor"
	if _, err := changePolicies(ctx, op, []policyValue{{"billing.window_seconds", "2"}, {"payments.min_topup_minor", "1"}}, relogin); err == nil {
		t.Fatal("a refused set reported success")
	}
	if f.values["billing.window_seconds"] != "60" {
		t.Fatalf("a failed change left billing.window_seconds=%s", f.values["billing.window_seconds"])
	}
	if _, err := changePolicies(ctx, op, []policyValue{{"no.such.key", "1"}}, relogin); err == nil {
		t.Fatal("an unknown key was accepted")
	}
}
