package devpay

import (
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

var checkoutPage = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dev checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto}button{font-size:1.2rem;padding:.5rem 2rem}</style>
</head><body>
<h1>Dev checkout</h1>
<p>This is the development payment provider. No money moves.</p>
<p>Top-up: <strong id="amount">{{.Amount}} {{.Currency}}</strong></p>
{{if .Paid}}<p id="paid">Paid.</p><p><a href="{{.SuccessURL}}">Continue</a></p>
{{else}}<form method="post" action="{{.PayPath}}"><button type="submit" id="pay">Pay</button></form>
<p><a href="{{.CancelURL}}">Cancel</a></p>{{end}}
</body></html>`))

var portalPage = template.Must(template.New("portal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dev billing portal</title></head><body>
<h1>Dev billing portal</h1><p>The development provider keeps no payment methods or invoices.</p>
<p><a href="{{.}}">Back</a></p></body></html>`))

// Handler serves the checkout and portal pages under Config.MountPath:
//
//	GET  {mount}checkout/{ref}      the page with the amount and a Pay button
//	POST {mount}checkout/{ref}/pay  deliver the signed webhook, then 303 to the success URL
//	GET  {mount}portal/{id}         a portal stand-in linking back
func (p *Provider) Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	m := p.cfg.MountPath
	mux.HandleFunc("GET "+m+"checkout/{ref}", func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("ref")
		p.mu.Lock()
		c, ok := p.checkouts[ref]
		var view map[string]any
		if ok {
			view = map[string]any{"Amount": formatMinor(c.req.AmountMinor), "Currency": strings.ToUpper(c.req.Currency),
				"Paid": c.paid, "SuccessURL": c.req.SuccessURL, "CancelURL": c.req.CancelURL,
				"PayPath": m + "checkout/" + ref + "/pay"}
		}
		p.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = checkoutPage.Execute(w, view)
	})
	mux.HandleFunc("POST "+m+"checkout/{ref}/pay", func(w http.ResponseWriter, r *http.Request) {
		success, err := p.Pay(r.Context(), r.PathValue("ref"))
		if err == ErrUnknownCheckout { //nolint:errorlint // sentinel returned as is
			http.NotFound(w, r)
			return
		}
		if err != nil {
			log.Warn("dev payment failed", "error", err.Error())
			http.Error(w, "the platform did not accept the payment; see the server log", http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, success, http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+m+"portal/{id}", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		back, ok := p.portals[r.PathValue("id")]
		p.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = portalPage.Execute(w, back)
	})
	return mux
}

// formatMinor renders minor units with two decimals using integer math.
func formatMinor(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	frac := strconv.FormatInt(v%100, 10)
	if len(frac) == 1 {
		frac = "0" + frac
	}
	return sign + strconv.FormatInt(v/100, 10) + "." + frac
}
