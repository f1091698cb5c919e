package awskms

import (
	"context"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// Module provides ports.KMS from a Config the host supplies.
var Module = fx.Module("awskms",
	fx.Provide(fx.Annotate(func(cfg Config) (*KMS, error) { return New(context.Background(), cfg) }, fx.As(new(ports.KMS)))),
)
