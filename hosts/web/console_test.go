package web

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func testDist() fstest.MapFS {
	return fstest.MapFS{
		"index.html":            {Data: []byte(`<meta name="csp-nonce" content="__CSP_NONCE__"><script type="module" src="/assets/index-abc.js"></script>`)},
		"assets/index-abc.js":   {Data: []byte("console.log(1)")},
		"assets/index-abc.css":  {Data: []byte("body{}")},
		"favicon.svg":           {Data: []byte("<svg/>")},
		"assets/sub/nested.txt": {Data: []byte("x")},
	}
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestIndexFallbackCarriesAFreshNonceInItsCSP(t *testing.T) {
	t.Parallel()
	h := New(Config{}, testDist(), []byte("unbuilt"))
	var nonces []string
	for _, p := range []string{"/", "/allocations/0195-abc", "/billing?checkout=success", "/admin/nodes", "/auth/callback?code=x"} {
		w := get(t, h, http.MethodGet, p)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "csp-nonce") {
			t.Fatalf("%s: status %d body %q", p, w.Code, w.Body.String())
		}
		m := regexp.MustCompile(`content="([^"]+)"`).FindStringSubmatch(w.Body.String())
		if m == nil || m[1] == noncePlaceholder {
			t.Fatalf("%s: nonce not replaced: %s", p, w.Body.String())
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "'nonce-"+m[1]+"'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: CSP %q does not fit nonce %q", p, csp, m[1])
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: headers %v", p, w.Header())
		}
		nonces = append(nonces, m[1])
	}
	slices.Sort(nonces)
	if len(slices.Compact(nonces)) != 5 {
		t.Fatalf("nonces repeat: %v", nonces)
	}
}

// Direct uploads: the object store's origins join connect-src and the page is
// told so; without them the page says off and connect-src is 'self' only.
func TestDirectUploadOriginsJoinConnectSrc(t *testing.T) {
	t.Parallel()
	dist := testDist()
	dist["index.html"] = &fstest.MapFile{Data: []byte(`<meta name="csp-nonce" content="__CSP_NONCE__"><meta name="gpuaas-direct-uploads" content="__DIRECT_UPLOADS__">`)}
	for _, tc := range []struct {
		origins []string
		connect string
		meta    string
	}{
		{nil, "connect-src 'self';", `content="off"`},
		{[]string{"https://s3.example.com"}, "connect-src 'self' https://s3.example.com;", `content="on"`},
	} {
		w := get(t, New(Config{DirectUploadOrigins: tc.origins}, dist, nil), http.MethodGet, "/storage")
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, tc.connect) {
			t.Errorf("%v: CSP %q lacks %q", tc.origins, csp, tc.connect)
		}
		if !strings.Contains(w.Body.String(), `name="gpuaas-direct-uploads" `+tc.meta) {
			t.Errorf("%v: body %q", tc.origins, w.Body.String())
		}
	}
}

func TestAssetsAreCachedForGoodAndMissingOnesAre404(t *testing.T) {
	t.Parallel()
	h := New(Config{}, testDist(), nil)
	w := get(t, h, http.MethodGet, "/assets/index-abc.js")
	if w.Code != http.StatusOK || w.Body.String() != "console.log(1)" ||
		w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		!strings.Contains(w.Header().Get("Content-Type"), "javascript") {
		t.Fatalf("asset: %d %v", w.Code, w.Header())
	}
	// A stale hash after a deploy must not get index.html (the browser would run HTML as script).
	for _, p := range []string{"/assets/index-old.js", "/assets/sub", "/assets/sub/../gone.js"} {
		if w := get(t, h, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Fatalf("%s: status %d", p, w.Code)
		}
	}
	// A path that climbs out is cleaned first: it can only ever name the build.
	if w := get(t, h, http.MethodGet, "/assets/../../etc/passwd"); !strings.Contains(w.Body.String(), "csp-nonce") {
		t.Fatalf("traversal: %d %q", w.Code, w.Body.String())
	}
	if w := get(t, h, http.MethodGet, "/favicon.svg"); w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("favicon: %d %v", w.Code, w.Header())
	}
	if w := get(t, h, http.MethodHead, "/assets/index-abc.css"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q", w.Code, w.Body.String())
	}
	if w := get(t, h, http.MethodPost, "/billing"); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
}

func TestUnbuiltConsoleSaysHowToBuildIt(t *testing.T) {
	t.Parallel()
	for _, dist := range []fstest.MapFS{nil, {"assets/x.js": {Data: []byte("x")}}} {
		var h http.Handler
		if dist == nil {
			h = New(Config{}, nil, []byte("run make web"))
		} else {
			h = New(Config{}, dist, []byte("run make web"))
		}
		w := get(t, h, http.MethodGet, "/billing")
		if w.Code != http.StatusOK || w.Body.String() != "run make web" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("unbuilt: %d %q", w.Code, w.Body.String())
		}
	}
	b, err := static.ReadFile("static/unbuilt.html")
	if err != nil || !strings.Contains(string(b), "make web") {
		t.Fatalf("embedded unbuilt page: %v", err)
	}
	// The embedded handler works whether or not the console was built.
	if w := get(t, Handler(Config{HSTS: true}), http.MethodGet, "/"); w.Code != http.StatusOK || w.Header().Get("Strict-Transport-Security") == "" {
		t.Fatalf("embedded: %d %v", w.Code, w.Header())
	}
}

// The Go side and the router agree on the console's top-level paths.
func TestPrefixesMatchTheRouter(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("src/App.tsx")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`CONSOLE_PREFIXES = \[([^\]]*)\]`).FindSubmatch(src)
	if m == nil {
		t.Fatal("CONSOLE_PREFIXES not found in src/App.tsx")
	}
	var ts []string
	for _, s := range regexp.MustCompile(`"([^"]*)"`).FindAllSubmatch(m[1], -1) {
		ts = append(ts, string(s[1]))
	}
	if !slices.Equal(ts, Prefixes) {
		t.Fatalf("src/App.tsx CONSOLE_PREFIXES %v != web.Prefixes %v", ts, Prefixes)
	}
	// Every routed top-level segment is covered by a prefix.
	for _, r := range regexp.MustCompile(`path: "([a-z]+)`).FindAllSubmatch(src, -1) {
		if !slices.Contains(Prefixes, "/"+string(r[1])) {
			t.Errorf("route %q has no console prefix", r[1])
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.NotFoundHandler()) // the API's catch-all
	for _, p := range Patterns() {
		mux.Handle(p, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	}
	for path, console := range map[string]bool{
		"/": true, "/billing": true, "/admin/nodes": true, "/allocations/x": true, "/auth/callback": true,
		"/assets/a.js": true, "/api/v1/healthz": false, "/metrics": false, "/ws/terminal/x": false, "/dev-pay/x": false,
	} {
		_, pat := mux.Handler(httptest.NewRequest(http.MethodGet, path, nil))
		if (pat != "/") != console {
			t.Errorf("%s: served by %q, console=%v", path, pat, console)
		}
	}
}
