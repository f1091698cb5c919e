package main

import (
	"strings"

	"go.uber.org/fx"

	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/hosts/web"
)

// consoleOptions serve the web console (hosts/web) on the API's listener, beside
// the API: its GET paths only (web.Patterns), so /api, /metrics, /ws and /dev-pay
// keep their own handlers. A binary built without `make web` serves a page
// saying how to build the console.
func consoleOptions(s Settings) fx.Option {
	return fx.Provide(fx.Annotate(func() []httphost.Mount {
		h := web.Handler(web.Config{HSTS: strings.HasPrefix(s.PublicURL, "https://")})
		var out []httphost.Mount
		for _, p := range web.Patterns() {
			out = append(out, httphost.Mount{Pattern: p, Handler: h})
		}
		return out
	}, fx.ResultTags(`group:"http_mounts,flatten"`)))
}
