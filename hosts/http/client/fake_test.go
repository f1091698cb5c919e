package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// fakeAPI is a small stand-in for the API that the examples and tests run
// against: a few routes with the contract's shapes, in memory. (The real
// API is exercised through this client by testkit/e2e and the hosts'
// tests.)
type fakeAPI struct {
	*httptest.Server
	mu          sync.Mutex
	allocations []map[string]any
	polls       int
	// requests records method, path, idempotency key and credential.
	requests []seen
	// busy answers the next n requests 429 with Retry-After: 1.
	busy int
	// tokens issued to the service account.
	tokens int
	// slow keeps an allocation provisioning for this many more polls.
	slow int
}

type seen struct{ method, path, key, auth, project string }

const (
	fakeKey     = "gpa_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
	fakeClient  = "5b0c6a57-1111-4e6b-9a1e-2f6f0c9d3e21"
	fakeSecret  = "gps_secret"
	fakeProject = "7a9d3c1e-2222-4c8e-8f7e-3a1b2c3d4e5f"
)

func newFakeAPI() *fakeAPI {
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "correlation_id": "c-1"}})
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, seen{r.Method, r.URL.Path, r.Header.Get("X-Idempotency-Key"),
		r.Header.Get("Authorization"), r.Header.Get("X-Project-ID")})
	if r.URL.Path == "/api/v1/auth/service-token" {
		var req struct{ ClientID, ClientSecret string }
		_ = json.NewDecoder(r.Body).Decode(&struct {
			ClientID     *string `json:"client_id"`
			ClientSecret *string `json:"client_secret"`
		}{&req.ClientID, &req.ClientSecret})
		if req.ClientID != fakeClient || req.ClientSecret != fakeSecret {
			fail(w, 401, "invalid_client", "the client id or secret is invalid, revoked or expired")
			return
		}
		f.tokens++
		writeJSON(w, 200, map[string]any{"access_token": fmt.Sprintf("sa-token-%d", f.tokens), "token_type": "Bearer",
			"expires_in": 900, "scope": "read allocations storage"})
		return
	}
	auth := r.Header.Get("Authorization")
	if auth != "Bearer "+fakeKey && !strings.HasPrefix(auth, "Bearer sa-token-") {
		fail(w, 401, "token_invalid", "the API key is invalid, revoked or expired")
		return
	}
	if f.busy > 0 {
		f.busy--
		w.Header().Set("Retry-After", "1")
		fail(w, 429, "rate_limited", "too many requests; retry later")
		return
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/skus":
		writeJSON(w, 200, map[string]any{"skus": []map[string]any{{"id": "h100-80g-x1", "name": "1× H100 80 GB",
			"gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 1, "gpu_memory_gib": 80, "cpu_cores": 24, "memory_gib": 256,
			"hourly_price_minor": 299, "currency": "usd", "available": 2}}})
	case r.Method == "POST" && r.URL.Path == "/api/v1/allocations":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if cap, _ := body["max_hourly_price_minor"].(float64); cap > 0 && cap < 299 {
			fail(w, 422, "max_hourly_price_exceeded", "the SKU's hourly price is above max_hourly_price_minor")
			return
		}
		a := map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.allocations)+1),
			"project_id": r.Header.Get("X-Project-ID"), "user_id": "u-1", "sku_id": body["sku_id"], "state": "requested",
			"price_minor": 299, "currency": "usd", "created_at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			"updated_at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "resource_id": "gpuaas:allocation"}
		f.allocations = append(f.allocations, a)
		writeJSON(w, 201, a)
	case r.Method == "GET" && r.URL.Path == "/api/v1/allocations":
		// Pages of two, newest first; the cursor is the index to start at.
		start := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			_, _ = fmt.Sscan(c, &start)
		}
		var page []map[string]any
		for i := len(f.allocations) - 1 - start; i >= 0 && len(page) < 2; i-- {
			page = append(page, f.allocations[i])
		}
		out := map[string]any{"allocations": page}
		if start+2 < len(f.allocations) {
			out["next_cursor"] = fmt.Sprint(start + 2)
		}
		writeJSON(w, 200, out)
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/api/v1/allocations/"):
		id := strings.TrimPrefix(r.URL.Path, "/api/v1/allocations/")
		for _, a := range f.allocations {
			if a["id"] == id {
				// Each poll moves it one state on: requested → provisioning → active.
				f.polls++
				switch a["state"] {
				case "requested":
					a["state"] = "provisioning"
				case "provisioning":
					if f.slow > 0 {
						f.slow--
						break
					}
					a["state"] = "active"
					a["access"] = map[string]any{"host": "127.0.0.1", "port": 2222, "user": "ga_00000001",
						"command": "ssh -p 2222 ga_00000001@127.0.0.1"}
				}
				writeJSON(w, 200, a)
				return
			}
		}
		fail(w, 404, "not_found", "allocation not found")
	case r.Method == "GET" && r.URL.Path == "/api/v1/billing/balance":
		writeJSON(w, 402, map[string]any{"error": map[string]any{"code": "insufficient_balance", "message": "top up first",
			"correlation_id": "c-2", "details": map[string]any{"balance_minor": 0}}})
	default:
		fail(w, 404, "not_found", "no such route in the fake")
	}
}
