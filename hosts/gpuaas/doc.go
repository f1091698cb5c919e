// Command gpuaas is the platform's single binary: the API server, the
// workers, migrations and `gpuaas dev`, the whole platform in one process on
// embedded defaults. It reads configuration from the environment (README.md,
// "Configuration") and wires adapters and hosts with fx.
package main
