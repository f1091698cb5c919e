package keyfile

import (
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// KMSModule provides ports.KMS from a KMSConfig the host supplies.
var KMSModule = fx.Module("keyfile-kms",
	fx.Provide(fx.Annotate(NewKMS, fx.As(new(ports.KMS)))),
)

// SignerModule provides ports.Signer from a SignerConfig the host supplies.
var SignerModule = fx.Module("keyfile-signer",
	fx.Provide(fx.Annotate(NewSigner, fx.As(new(ports.Signer)))),
)
