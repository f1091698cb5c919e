package netprobe

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides a Prober with the default 10 s budget as ports.NodeProber.
var Module = fx.Module("netprobe",
	fx.Provide(fx.Annotate(func() (*Prober, error) { return New(Config{}) }, fx.As(new(ports.NodeProber)))),
)
