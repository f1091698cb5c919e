package nodeagent

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/gpuaas/gpuaas/core/inventory"
)

type inventoryGPU = inventory.GPU

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func randHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type x509Cert struct{ NotBefore, NotAfter time.Time }

func (c *x509Cert) cert() *x509.Certificate {
	return &x509.Certificate{NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}
