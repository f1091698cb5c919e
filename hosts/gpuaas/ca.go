package main

import (
	"context"
	"io"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/pki"
)

// caRoot prints the platform CA's root certificate (PEM): node agents trust
// the agent gateway with it before they enrol (`gpuaas-agent run --ca-file`).
func caRoot(ctx context.Context, s Settings, out io.Writer) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	var ca *pki.CA
	app := fx.New(baseOptions(s, newLogger(s)), securityOptions(s), fx.Populate(&ca))
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = app.Stop(stopCtx)
	}()
	root, err := ca.RootPEM(startCtx)
	if err != nil {
		return err
	}
	_, err = out.Write(root)
	return err
}
