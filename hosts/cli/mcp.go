package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// The MCP tools' inputs. Amounts are minor units of the tenant's currency
// (cents): agents do arithmetic on integers, never on formatted money.
type (
	noInput    struct{}
	quoteInput struct {
		SKUID               string `json:"sku_id" jsonschema:"the SKU to rent, from list_skus"`
		MaxHourlyPriceMinor int64  `json:"max_hourly_price_minor,omitempty" jsonschema:"refuse a SKU dearer than this per hour, in minor units"`
		MaxTotalCostMinor   int64  `json:"max_total_cost_minor,omitempty" jsonschema:"the most the node may cost in total, in minor units"`
	}
	createInput struct {
		SKUID               string `json:"sku_id" jsonschema:"the SKU to rent, from list_skus"`
		MaxTotalCostMinor   int64  `json:"max_total_cost_minor" jsonschema:"required: the most the node may cost in total, in minor units; the platform releases it before it costs more"`
		MaxHourlyPriceMinor int64  `json:"max_hourly_price_minor,omitempty" jsonschema:"refuse a SKU dearer than this per hour, in minor units"`
		WaitActive          bool   `json:"wait_active,omitempty" jsonschema:"wait until the node is active (or failed) before answering"`
	}
	listInput struct {
		State string `json:"state,omitempty" jsonschema:"only allocations in this state (requested, provisioning, active, releasing, released, failed)"`
	}
	allocInput struct {
		AllocationID string `json:"allocation_id" jsonschema:"the allocation's id"`
	}
)

// MCPServer is the Model Context Protocol server of `gpuaas mcp`: the
// agent-safe API as tools, acting with the caller's credential and its
// scopes. Creating a node requires a total-cost cap.
func MCPServer(c *client.Client, version string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "gpuaas", Title: "GPUaaS", Version: version}, &mcp.ServerOptions{
		Instructions: "GPU nodes by the hour. Call list_skus, then quote before create_allocation; every allocation " +
			"needs max_total_cost_minor and is released by the platform before it costs more. Release nodes you no " +
			"longer need with release_allocation. Amounts are minor units (cents) of the currency shown.",
	})
	ro := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s, &mcp.Tool{Name: "list_skus", Description: "The GPU node types for rent, with hourly price (minor units) and free nodes.",
		Annotations: ro}, func(ctx context.Context, _ *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, any, error) {
		skus, err := c.SKUs(ctx)
		return nil, map[string]any{"skus": skus}, toolErr(err)
	})
	mcp.AddTool(s, &mcp.Tool{Name: "quote", Description: "What a node of a SKU would cost, the runway left after it, and " +
		"whether the request would be allowed (balance, caps, spend cap, capacity), without creating anything.", Annotations: ro},
		func(ctx context.Context, _ *mcp.CallToolRequest, in quoteInput) (*mcp.CallToolResult, any, error) {
			q, err := c.Quote(ctx, createReq(in.SKUID, in.MaxHourlyPriceMinor, in.MaxTotalCostMinor))
			return nil, q, toolErr(err)
		})
	notIdem := false
	mcp.AddTool(s, &mcp.Tool{Name: "create_allocation", Description: "Rent a node of a SKU under a total-cost cap " +
		"(max_total_cost_minor, required): it is released before it costs more. Quote first.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &notIdem, IdempotentHint: false}},
		func(ctx context.Context, _ *mcp.CallToolRequest, in createInput) (*mcp.CallToolResult, any, error) {
			if in.MaxTotalCostMinor <= 0 {
				return nil, nil, errors.New("max_total_cost_minor is required and must be positive")
			}
			a, err := c.CreateAllocation(ctx, createReq(in.SKUID, in.MaxHourlyPriceMinor, in.MaxTotalCostMinor))
			if err != nil || !in.WaitActive {
				return nil, a, toolErr(err)
			}
			a, err = c.WaitActive(ctx, a.Id, nil)
			return nil, a, toolErr(err)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "list_allocations", Description: "The project's allocations, newest first.", Annotations: ro},
		func(ctx context.Context, _ *mcp.CallToolRequest, in listInput) (*mcp.CallToolResult, any, error) {
			var out []client.Allocation
			for a, err := range c.Allocations(ctx, client.ListAllocations{State: client.AllocationState(in.State)}) {
				if err != nil {
					return nil, nil, toolErr(err)
				}
				out = append(out, a)
			}
			return nil, map[string]any{"allocations": out}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get_allocation", Description: "One allocation, with how to reach it over SSH while active.", Annotations: ro},
		func(ctx context.Context, _ *mcp.CallToolRequest, in allocInput) (*mcp.CallToolResult, any, error) {
			a, err := c.GetAllocation(ctx, in.AllocationID)
			return nil, a, toolErr(err)
		})
	destructive := true
	mcp.AddTool(s, &mcp.Tool{Name: "release_allocation", Description: "Release a node: billing stops now and the node is wiped.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &destructive, IdempotentHint: true}},
		func(ctx context.Context, _ *mcp.CallToolRequest, in allocInput) (*mcp.CallToolResult, any, error) {
			a, err := c.ReleaseAllocation(ctx, in.AllocationID)
			return nil, a, toolErr(err)
		})
	mcp.AddTool(s, &mcp.Tool{Name: "balance", Description: "The balance, burn rate and runway (minor units).", Annotations: ro},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ noInput) (*mcp.CallToolResult, any, error) {
			b, err := c.Balance(ctx)
			return nil, b, toolErr(err)
		})
	return s
}

func createReq(sku string, maxPrice, maxTotal int64) client.CreateAllocation {
	req := client.CreateAllocation{SkuId: sku}
	if maxPrice > 0 {
		req.MaxHourlyPriceMinor = &maxPrice
	}
	if maxTotal > 0 {
		req.MaxTotalCostMinor = &maxTotal
	}
	return req
}

// toolErr turns an API error into a tool error an agent can act on: the
// stable code first.
func toolErr(err error) error {
	if err == nil {
		return nil
	}
	var e *client.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%s: %s", e.Code, e.Message)
	}
	return err
}

// mcp serves the MCP server on standard input and output until the client
// disconnects. Logs go to standard error; standard output is the protocol's.
func (r *runner) mcp(args []string) error {
	f := r.flags("mcp")
	if err := f.parse(args); err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	r.json = false // nothing but the protocol on stdout
	s := MCPServer(c, "cli")
	err = s.Run(r.ctx, &mcp.IOTransport{Reader: io.NopCloser(r.env.Stdin), Writer: nopWriteCloser{r.env.Stdout}})
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
