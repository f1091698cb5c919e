package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// static holds unbuilt.html (committed) and dist/ when the console was built
// (`make web`); the all: prefix keeps files Vite names with a leading _ or dot.
//
//go:embed all:static
var static embed.FS

// Prefixes are the top-level paths the console's router owns (src/App.tsx
// CONSOLE_PREFIXES; TestPrefixesMatchTheRouter keeps the two equal). A prefix
// ending in "/" covers its subtree; "/" alone is the root page.
var Prefixes = []string{"/", "/auth/", "/allocations", "/keys", "/storage", "/billing", "/notifications", "/settings", "/admin"}

// Patterns are the http.ServeMux patterns the console answers, for mounting
// beside the API (whose catch-all "/" keeps every other path): GET (and HEAD)
// only, so a POST to a console path still gets the API's JSON 404/405.
func Patterns() []string {
	out := []string{"GET /assets/", "GET /favicon.svg"}
	for _, p := range Prefixes {
		switch {
		case p == "/":
			out = append(out, "GET /{$}")
		case strings.HasSuffix(p, "/"):
			out = append(out, "GET "+p)
		default:
			out = append(out, "GET "+p, "GET "+p+"/")
		}
	}
	return out
}

// Config configures the console handler.
type Config struct {
	// HSTS adds Strict-Transport-Security (set when the public URL is https,
	// as the API does).
	HSTS bool
	// DirectUploadOrigins are origins (scheme://host[:port]) of the object
	// store's presigned URLs that the console may send files to: they join
	// connect-src and the console uploads large files there directly
	// (presigned multipart) instead of through the API. The store's CORS
	// rules must allow PUT from the console's origin and expose ETag.
	DirectUploadOrigins []string
}

// noncePlaceholder is in index.html's <meta name="csp-nonce">; each response
// replaces it with a fresh nonce that the CSP allows for <style> elements
// (src/cspNonce.ts stamps it on the ones xterm.js creates).
const noncePlaceholder = "__CSP_NONCE__"

// directPlaceholder is in index.html's <meta name="gpuaas-direct-uploads">:
// "on" when DirectUploadOrigins is set, else "off".
const directPlaceholder = "__DIRECT_UPLOADS__"

// CSP is the console's policy for a nonce: scripts, styles, images, fonts and
// connections (fetch and the terminal WebSocket) from this origin only — and
// the object store's origins when given, for direct uploads; no inline
// script, no eval, no plugins, no framing.
func CSP(nonce string, connect ...string) string {
	connectSrc := "connect-src 'self'"
	for _, o := range connect {
		connectSrc += " " + o
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'nonce-" + nonce + "'",
		"img-src 'self' data:",
		"font-src 'self'",
		connectSrc,
		"manifest-src 'self'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
		"object-src 'none'",
	}, "; ")
}

// Handler serves the embedded console.
func Handler(cfg Config) http.Handler {
	dist, err := fs.Sub(static, "static/dist")
	if err != nil {
		dist = nil
	}
	unbuilt, _ := static.ReadFile("static/unbuilt.html")
	return New(cfg, dist, unbuilt)
}

// Built reports whether the binary carries a built console.
func Built() bool {
	_, err := fs.Stat(static, "static/dist/index.html")
	return err == nil
}

// New serves the console from dist (nil or without index.html: the unbuilt
// page). Tests pass an fstest.MapFS.
func New(cfg Config, dist fs.FS, unbuilt []byte) http.Handler {
	var index []byte
	if dist != nil {
		index, _ = fs.ReadFile(dist, "index.html")
	}
	return &handler{cfg: cfg, dist: dist, index: index, unbuilt: unbuilt}
}

type handler struct {
	cfg     Config
	dist    fs.FS
	index   []byte
	unbuilt []byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if h.cfg.HSTS {
		hdr.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.index == nil {
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(h.unbuilt)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	// Hashed build output: the name changes with the content, cache it for good.
	if strings.HasPrefix(p, "/assets/") {
		if h.serveFile(w, r, strings.TrimPrefix(p, "/"), "public, max-age=31536000, immutable") {
			return
		}
		hdr.Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	if p != "/" && p != "/index.html" && !strings.Contains(strings.TrimPrefix(p, "/"), "/") {
		// Files at the root of the build (favicon.svg): not hashed, short cache.
		if h.serveFile(w, r, strings.TrimPrefix(p, "/"), "public, max-age=3600") {
			return
		}
	}
	h.serveIndex(w)
}

// serveFile serves one file of the build; false when it does not exist.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name, cache string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	st, err := fs.Stat(h.dist, name)
	if err != nil || st.IsDir() {
		return false
	}
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("Content-Security-Policy", CSP(newNonce()))
	http.ServeFileFS(w, r, h.dist, name)
	return true
}

// serveIndex is the SPA fallback: every console route gets index.html with a
// fresh nonce, never cached (it names the current hashed assets).
func (h *handler) serveIndex(w http.ResponseWriter) {
	nonce := newNonce()
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP(nonce, h.cfg.DirectUploadOrigins...))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	body := bytes.ReplaceAll(h.index, []byte(noncePlaceholder), []byte(nonce))
	direct := "off"
	if len(h.cfg.DirectUploadOrigins) > 0 {
		direct = "on"
	}
	body = bytes.ReplaceAll(body, []byte(directPlaceholder), []byte(direct))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func newNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}
