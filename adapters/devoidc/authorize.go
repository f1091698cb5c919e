package devoidc

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/gpuaas/gpuaas/core/identity"
)

// Login form field names. The page at /authorize posts them to /login;
// testkit/tokens/signin and scripts/pkce-login fill them programmatically.
const (
	FieldRequestID = "request_id" // hidden: the pending authorization request
	FieldUsername  = "username"
	FieldPassword  = "password"
	FieldPick      = "pick" // one-click sign-in as this demo user (no password)
	// LoginFormID is the id attribute of the login <form>.
	LoginFormID = "login"
)

// challengeRE is an S256 code challenge: base64url of 32 bytes, no padding.
var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// verifierRE is an RFC 7636 code verifier.
var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authorize validates an authorization request and shows the login page.
// Errors about the client or redirect URI are shown to the user (redirecting
// to an unverified URI would make us an open redirector); the rest go back to
// the client as error parameters (RFC 6749 §4.1.2.1).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.cfg.ClientID {
		p.loginUI.renderError(w, http.StatusBadRequest, "Unknown client_id.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(p.cfg.RedirectURIs, redirectURI) && !(p.cfg.AllowLoopbackRedirects && identity.IsLoopbackRedirect(redirectURI)) {
		p.loginUI.renderError(w, http.StatusBadRequest, "The redirect_uri is not registered for this client.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		http.Redirect(w, r, p.callbackURL(redirectURI, url.Values{
			"error": {code}, "error_description": {desc}, "state": {state},
		}), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	case q.Get("code_challenge_method") != "S256" || !challengeRE.MatchString(q.Get("code_challenge")):
		// PKCE is required: the client is public, so the code alone must
		// not be enough to obtain tokens.
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	case q.Get("request") != "" || q.Get("request_uri") != "":
		fail("request_not_supported", "request objects are not supported")
		return
	case strings.Contains(" "+q.Get("prompt")+" ", " none "):
		// There is no provider-side session to reuse: every sign-in shows
		// the login page.
		fail("login_required", "the dev provider keeps no session; the user must sign in")
		return
	}
	scope := q.Get("scope")
	if scope == "" {
		scope = "openid"
	}
	id := randomToken()
	now := p.now()
	p.mu.Lock()
	p.sweepLocked(now)
	p.requests[id] = &authRequest{
		redirectURI: redirectURI,
		state:       state,
		nonce:       q.Get("nonce"),
		scope:       scope,
		challenge:   q.Get("code_challenge"),
		expires:     now.Add(authRequestTTL),
	}
	p.mu.Unlock()
	p.loginUI.render(w, http.StatusOK, id, "")
}

// login handles the login form: it checks the user and sends the browser back
// to the client with a one-time code.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.loginUI.renderError(w, http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	id := r.PostForm.Get(FieldRequestID)
	now := p.now()
	p.mu.Lock()
	req, ok := p.requests[id]
	if ok && now.After(req.expires) {
		delete(p.requests, id)
		ok = false
	}
	p.mu.Unlock()
	if !ok {
		p.loginUI.renderError(w, http.StatusBadRequest, "This sign-in request has expired or was already used. Start the sign-in again from the application.")
		return
	}

	var user DemoUser
	// A typed username wins over pick: pressing Enter in the password field
	// submits the form with the first submit button, which is a pick button.
	if pick := r.PostForm.Get(FieldPick); pick != "" && !p.cfg.RequirePassword && r.PostForm.Get(FieldUsername) == "" {
		user, ok = p.users[pick]
	} else {
		user, ok = p.checkPassword(r.Context(), r.PostForm.Get(FieldUsername), r.PostForm.Get(FieldPassword))
	}
	if !ok {
		msg := "Invalid username or password."
		if _, _, err := p.firstSignInError(r.Context(), r.PostForm.Get(FieldUsername), r.PostForm.Get(FieldPassword)); err != nil {
			msg = "Choose a password of at least 8 characters for your first sign-in."
		}
		p.loginUI.render(w, http.StatusUnauthorized, id, msg)
		return
	}

	code := randomToken()
	p.mu.Lock()
	if _, still := p.requests[id]; !still {
		// A concurrent submission of the same form won the race.
		p.mu.Unlock()
		p.loginUI.renderError(w, http.StatusBadRequest, "This sign-in request was already used.")
		return
	}
	delete(p.requests, id)
	p.codes[code] = &authCode{
		username:    user.Username,
		redirectURI: req.redirectURI,
		nonce:       req.nonce,
		scope:       req.scope,
		challenge:   req.challenge,
		authTime:    now,
		expires:     now.Add(codeTTL),
	}
	p.mu.Unlock()

	// 303 so the browser follows with GET, not by re-posting the password.
	http.Redirect(w, r, p.callbackURL(req.redirectURI, url.Values{
		"code": {code}, "state": {req.state}, "iss": {p.cfg.Issuer},
	}), http.StatusSeeOther)
}

// checkPassword signs in a demo user (compared in constant time, the same
// work for unknown names) or a person by email (people.go).
func (p *Provider) checkPassword(ctx context.Context, username, password string) (DemoUser, bool) {
	u, known := p.users[username]
	want := u.Password
	if !known {
		want = "\x00no-such-user"
	}
	if equalConstantTime(password, want) && known {
		return u, true
	}
	if known {
		return DemoUser{}, false
	}
	pu, ok, err := p.checkPerson(ctx, username, password)
	return pu, ok && err == nil
}

// firstSignInError says why an expected person's first sign-in was refused
// (a password too short), for the login page.
func (p *Provider) firstSignInError(ctx context.Context, username, password string) (DemoUser, bool, error) {
	if _, demo := p.users[username]; demo || len(password) >= MinPasswordLength {
		return DemoUser{}, false, nil
	}
	email := strings.ToLower(strings.TrimSpace(username))
	p.mu.Lock()
	_, known := p.people[email]
	p.mu.Unlock()
	if known || p.cfg.Directory == nil {
		return DemoUser{}, false, nil
	}
	if ok, err := p.cfg.Directory.Expected(ctx, email); err != nil || !ok {
		return DemoUser{}, false, nil
	}
	return DemoUser{}, false, errFirstSignIn
}

// callbackURL adds params to redirectURI, keeping its own query. Empty
// values are left out (state is optional).
func (p *Provider) callbackURL(redirectURI string, params url.Values) string {
	u, _ := url.Parse(redirectURI) // validated at configuration
	q := u.Query()
	for k, vs := range params {
		if len(vs) > 0 && vs[0] != "" {
			q.Set(k, vs[0])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// loginPage renders the HTML login page and error pages.
type loginPage struct {
	p    *Provider
	tmpl *template.Template
}

type loginView struct {
	Title     string
	Action    string
	RequestID string
	Error     string
	Users     []DemoUser
	Pick      bool
	Fatal     bool
	Fields    map[string]string
	FormID    string
}

func newLoginPage(p *Provider) *loginPage {
	return &loginPage{p: p, tmpl: template.Must(template.New("login").Parse(loginHTML))}
}

func (l *loginPage) render(w http.ResponseWriter, status int, requestID, errMsg string) {
	l.write(w, status, loginView{
		Title:     "Sign in — gpuaas dev",
		Action:    l.p.loginPath(),
		RequestID: requestID,
		Error:     errMsg,
		Users:     l.p.Users(),
		Pick:      !l.p.cfg.RequirePassword,
	})
}

func (l *loginPage) renderError(w http.ResponseWriter, status int, msg string) {
	l.write(w, status, loginView{Title: "Sign-in error — gpuaas dev", Error: msg, Fatal: true})
}

func (l *loginPage) write(w http.ResponseWriter, status int, v loginView) {
	v.Fields = map[string]string{
		"RequestID": FieldRequestID, "Username": FieldUsername, "Password": FieldPassword, "Pick": FieldPick,
	}
	v.FormID = LoginFormID
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No scripts at all; no framing (clickjacking of the login form). No
	// form-action: browsers apply it to the redirect back to the client.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = l.tmpl.Execute(w, v)
}

// Keep the page free of scripts; it must work with curl-like clients too.
const loginHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem} .err{color:#a00;border:1px solid #a00;padding:.5rem;border-radius:4px}
label{display:block;margin:.5rem 0} input{width:100%;padding:.4rem;box-sizing:border-box}
button{padding:.4rem .8rem;margin:.2rem 0;cursor:pointer} .users button{display:block;width:100%;text-align:left}
.note{color:#666;font-size:.85rem}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if not .Fatal}}
<form id="{{.FormID}}" method="post" action="{{.Action}}">
<input type="hidden" name="{{index .Fields "RequestID"}}" value="{{.RequestID}}">
{{if .Pick}}<div class="users"><p>Sign in as a demo user:</p>
{{range .Users}}<button type="submit" name="{{index $.Fields "Pick"}}" value="{{.Username}}">{{.Name}} ({{.Username}}{{range .Roles}}, {{.}}{{end}})</button>
{{end}}</div><p>or with a password:</p>{{end}}
<p class="note">Someone an operator added, or a tenant invited: sign in with your email — the password you choose the first time (8 characters or more) becomes yours.</p>
<label>Username or email <input name="{{index .Fields "Username"}}" autocomplete="username"></label>
<label>Password <input type="password" name="{{index .Fields "Password"}}" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
<p class="note">Development identity provider: never expose it beyond localhost.</p>
{{end}}
</body></html>
`
