package contract

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/ports"
)

// uniqueKey returns a key no other test uses, so suites can share a store.
func uniqueKey(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// RunIdempotencySuite runs the [ports.IdempotencyStore] contract against
// stores made by newStore. The expiry case uses a 1 ms TTL and polls until
// the key is released, so the store must judge expiry by a clock that
// moves (the wall clock, or one the caller advances independently).
func RunIdempotencySuite(t *testing.T, newStore func(t *testing.T) ports.IdempotencyStore) {
	t.Helper()
	const hour = time.Hour
	ctx := context.Background()

	t.Run("NewThenInFlight", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		mustBegin(t, s, scope, key, "fp", hour, ports.IdempotencyNew)
		mustBegin(t, s, scope, key, "fp", hour, ports.IdempotencyInFlight)
	})

	t.Run("ScopesAreSeparate", func(t *testing.T) {
		t.Parallel()
		s, key := newStore(t), uniqueKey("key")
		mustBegin(t, s, uniqueKey("scope-a"), key, "fp", hour, ports.IdempotencyNew)
		mustBegin(t, s, uniqueKey("scope-b"), key, "fp", hour, ports.IdempotencyNew)
	})

	t.Run("CompleteThenReplay", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		mustBegin(t, s, scope, key, "fp", hour, ports.IdempotencyNew)
		want := ports.StoredResponse{Status: 201,
			Headers: map[string]string{"Content-Type": "application/json", "Location": "/v1/things/1"},
			Body:    json.RawMessage(`{"id":"1","n":[1,2,3]}`)}
		if err := s.Complete(ctx, scope, key, want); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		for i := 0; i < 2; i++ { // replay is repeatable
			got := mustBegin(t, s, scope, key, "fp", hour, ports.IdempotencyReplay)
			assertResponse(t, got, want)
		}
	})

	t.Run("MismatchWhileInFlightAndAfterCompletion", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		mustBegin(t, s, scope, key, "fp-1", hour, ports.IdempotencyNew)
		mustBegin(t, s, scope, key, "fp-2", hour, ports.IdempotencyMismatch)
		if err := s.Complete(ctx, scope, key, ports.StoredResponse{Status: 200, Body: json.RawMessage(`{}`)}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		got := mustBegin(t, s, scope, key, "fp-2", hour, ports.IdempotencyMismatch)
		if got.Status != 0 || len(got.Body) != 0 {
			t.Fatalf("a mismatch leaked the stored response: %+v", got)
		}
	})

	t.Run("AbandonReleasesTheKey", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		mustBegin(t, s, scope, key, "fp-1", hour, ports.IdempotencyNew)
		if err := s.Abandon(ctx, scope, key); err != nil {
			t.Fatalf("Abandon: %v", err)
		}
		// Released entirely: even another request may now claim the key.
		mustBegin(t, s, scope, key, "fp-2", hour, ports.IdempotencyNew)
	})

	t.Run("AbandonKeepsACompletedKey", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		mustBegin(t, s, scope, key, "fp", hour, ports.IdempotencyNew)
		want := ports.StoredResponse{Status: 202, Body: json.RawMessage(`{"ok":true}`)}
		if err := s.Complete(ctx, scope, key, want); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		if err := s.Abandon(ctx, scope, key); err != nil {
			t.Fatalf("Abandon of a completed key: %v", err)
		}
		assertResponse(t, mustBegin(t, s, scope, key, "fp", hour, ports.IdempotencyReplay), want)
	})

	t.Run("AbandonOfUnknownKeyIsANoOp", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.Abandon(ctx, uniqueKey("scope"), uniqueKey("key")); err != nil {
			t.Fatalf("Abandon of an unknown key: %v", err)
		}
	})

	t.Run("CompleteOfUnknownKeyFails", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.Complete(ctx, uniqueKey("scope"), uniqueKey("key"), ports.StoredResponse{Status: 200}); err == nil {
			t.Fatal("Complete of a key never begun succeeded")
		}
	})

	t.Run("ExpiredKeyIsReplaced", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		mustBegin(t, s, scope, key, "fp-old", time.Millisecond, ports.IdempotencyNew)
		if err := s.Complete(ctx, scope, key, ports.StoredResponse{Status: 200, Body: json.RawMessage(`{"old":true}`)}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		// Poll until the key has expired; until then the other request is
		// told the key is someone else's.
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, _, err := s.Begin(ctx, scope, key, "fp-new", hour)
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if st == ports.IdempotencyNew {
				break
			}
			if st != ports.IdempotencyMismatch {
				t.Fatalf("Begin before expiry = %v, want Mismatch", st)
			}
			if time.Now().After(deadline) {
				t.Fatal("a key with a 1 ms TTL did not expire within 10 s")
			}
			waitABit()
		}
		// The new request owns the key now; the old response is gone.
		mustBegin(t, s, scope, key, "fp-new", hour, ports.IdempotencyInFlight)
		mustBegin(t, s, scope, key, "fp-old", hour, ports.IdempotencyMismatch)
	})

	t.Run("RaceOf20ExactlyOneNew", func(t *testing.T) {
		t.Parallel()
		s, scope, key := newStore(t), uniqueKey("scope"), uniqueKey("key")
		const n = 20
		states := make([]ports.IdempotencyState, n)
		errs := make([]error, n)
		race(n, func(i int) { states[i], _, errs[i] = s.Begin(ctx, scope, key, "fp", hour) })
		counts := map[ports.IdempotencyState]int{}
		for i := range states {
			if errs[i] != nil {
				t.Fatalf("racer %d: %v", i, errs[i])
			}
			counts[states[i]]++
		}
		if counts[ports.IdempotencyNew] != 1 || counts[ports.IdempotencyInFlight] != n-1 {
			t.Fatalf("states = %v; want exactly one New and %d InFlight", counts, n-1)
		}
	})
}

// waitABit paces a poll loop so it does not hammer the store.
func waitABit() { <-time.After(5 * time.Millisecond) }

func mustBegin(t *testing.T, s ports.IdempotencyStore, scope, key, fp string, ttl time.Duration, want ports.IdempotencyState) ports.StoredResponse {
	t.Helper()
	st, resp, err := s.Begin(context.Background(), scope, key, fp, ttl)
	if err != nil {
		t.Fatalf("Begin(%s, %s): %v", key, fp, err)
	}
	if st != want {
		t.Fatalf("Begin(%s, %s) = %v, want %v", key, fp, st, want)
	}
	return resp
}

func assertResponse(t *testing.T, got, want ports.StoredResponse) {
	t.Helper()
	if got.Status != want.Status {
		t.Fatalf("replayed status %d, want %d", got.Status, want.Status)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("replayed headers %v, want %v", got.Headers, want.Headers)
	}
	for k, v := range want.Headers {
		if got.Headers[k] != v {
			t.Fatalf("replayed header %s = %q, want %q", k, got.Headers[k], v)
		}
	}
	var g, w any
	if err := json.Unmarshal(got.Body, &g); err != nil {
		t.Fatalf("replayed body %q is not JSON: %v", got.Body, err)
	}
	_ = json.Unmarshal(want.Body, &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("replayed body %s, want %s", got.Body, want.Body)
	}
}
