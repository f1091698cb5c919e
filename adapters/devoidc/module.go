package devoidc

import "go.uber.org/fx"

// Module provides *Provider from a Config the host supplies. The host mounts
// it (mux.Handle(p.PathPrefix()+"/", p)) on its HTTP server.
var Module = fx.Module("devoidc", fx.Provide(New))
