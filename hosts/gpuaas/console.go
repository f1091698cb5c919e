package main

import (
	"net/url"
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
		h := web.Handler(web.Config{
			HSTS:                strings.HasPrefix(s.PublicURL, "https://"),
			DirectUploadOrigins: directUploadOrigins(s),
		})
		var out []httphost.Mount
		for _, p := range web.Patterns() {
			out = append(out, httphost.Mount{Pattern: p, Handler: h})
		}
		return out
	}, fx.ResultTags(`group:"http_mounts,flatten"`)))
}

// directUploadOrigins: S3_PRESIGN_ENDPOINT says where clients reach the object
// store, so the console may send large files there (presigned multipart); the
// store's CORS rules must allow it (doc/console.md). Without it the console
// uploads through the API.
func directUploadOrigins(s Settings) []string {
	if s.S3PresignEndpoint == "" {
		return nil
	}
	u, err := url.Parse(s.S3PresignEndpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}
