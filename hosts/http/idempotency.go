package httphost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/hosts/internal/idempotency"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// replayedHeaders are the response headers remembered for a replay. Per
// request headers (correlation id, rate limits) are not replayed.
var replayedHeaders = []string{"Content-Type", "Location"}

// fingerprint identifies "the same request": method, concrete path (two
// projects' member lists are different requests), active project header,
// caller and body.
func fingerprint(r *http.Request, userID string, body []byte) string {
	h := sha256.New()
	for _, part := range []string{r.Method, r.URL.Path, r.Header.Get("X-Project-ID"), userID} {
		_, _ = io.WriteString(h, strconv.Itoa(len(part))+":"+part+"\n")
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// idempotency makes authenticated mutating requests that carry
// X-Idempotency-Key safe to retry. Public routes are excluded on purpose:
// their responses are tokens, which must never be stored.
func (s *Server) idempotency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		key := r.Header.Get("X-Idempotency-Key")
		p, authed := PrincipalFrom(r.Context())
		if key == "" || st.route == nil || !st.route.mutating() || !authed || st.route.noIdempotency {
			next.ServeHTTP(w, r)
			return
		}
		if !ports.ValidIdempotencyKey(key) {
			s.fail(w, r, fault.Invalid("X-Idempotency-Key", "X-Idempotency-Key must be 1-255 printable ASCII characters"))
			return
		}
		body, err := s.readBody(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx := r.Context()
		scope := p.User.ID
		state, stored, err := s.d.Idempotency.Begin(ctx, scope, key, fingerprint(r, p.User.ID, body),
			idempotency.TTL(ctx, s.d.Policies, p.TenantID))
		if err == nil {
			err = idempotency.Refusal(state, "idempotency key")
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if state == ports.IdempotencyReplay {
			for k, v := range stored.Headers {
				w.Header().Set(k, v)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(stored.Status)
			if len(stored.Body) > 0 && string(stored.Body) != "null" {
				// Stores may normalise JSON (jsonb does); end it as writeJSON does.
				_, _ = w.Write(append(bytes.TrimSpace(stored.Body), '\n'))
			}
			return
		}

		// The outcome must be recorded even if the client goes away.
		bg := context.WithoutCancel(ctx)
		// Not where the use case dedupes on the key and resumes a retry
		// (x-idempotency: use-case).
		if !st.route.idempotencyByUseCase {
			r = r.WithContext(idempotency.MarkOnCommit(ctx, s.d.Idempotency, scope, key))
		}
		cw := &captureWriter{ResponseWriter: w}
		completed := false
		defer func() {
			if completed {
				return
			}
			// A panic (re-raised after this), a 5xx or a 499: release the key so a
			// retry runs again instead of replaying a failure — unless the
			// request committed, which Abandon leaves held.
			if err := s.d.Idempotency.Abandon(bg, scope, key); err != nil {
				s.log.LogAttrs(bg, slog.LevelWarn, "idempotency abandon failed",
					slog.String("correlation_id", st.correlationID), slog.String("error", redact.Text(err.Error())))
			}
		}()
		next.ServeHTTP(cw, r)
		status := cw.status
		if status == 0 {
			status = http.StatusOK
		}
		if status >= 500 || status == StatusClientClosedRequest {
			return
		}
		resp := ports.StoredResponse{Status: status, Headers: map[string]string{}}
		for _, h := range replayedHeaders {
			if v := cw.Header().Get(h); v != "" {
				resp.Headers[h] = v
			}
		}
		if b := bytes.TrimSpace(cw.body.Bytes()); len(b) > 0 {
			if !json.Valid(b) { // the store keeps JSON; a non-JSON answer is not replayable
				return
			}
			resp.Body = json.RawMessage(b)
		}
		if err := s.d.Idempotency.Complete(bg, scope, key, resp); err != nil {
			s.log.LogAttrs(bg, slog.LevelWarn, "idempotency complete failed",
				slog.String("correlation_id", st.correlationID), slog.String("error", redact.Text(err.Error())))
			return
		}
		completed = true
	})
}

// captureWriter passes the response through and keeps a copy of it.
type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
