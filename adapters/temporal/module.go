package temporal

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// HealthGroup is the fx value group hosts collect []ports.HealthCheck from.
const HealthGroup = "health"

// Module provides the Temporal client as *Client, as ports.WorkflowEngine
// and as a ports.HealthCheck ("temporal") in the group "health". The host
// supplies a Config; a *slog.Logger is used when the graph has one. The
// client connects lazily (no I/O while the graph is built) and closes on
// stop. The worker is run by hosts/workers.ProvisioningModule.
var Module = fx.Module("temporal",
	fx.Provide(
		fx.Annotate(provideClient, fx.ParamTags(``, ``, `optional:"true"`)),
		fx.Annotate(func(c *Client) *Client { return c }, fx.As(new(ports.WorkflowEngine))),
		fx.Annotate(func(c *Client) ports.HealthCheck { return c }, fx.ResultTags(`group:"`+HealthGroup+`"`)),
	),
)

func provideClient(lc fx.Lifecycle, cfg Config, logger *slog.Logger) (*Client, error) {
	if cfg.Logger == nil && logger != nil {
		cfg.Logger = logger
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(c.Close))
	return c, nil
}
