package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// A script with a personal API key: pick a SKU, request a node with a cost
// cap, wait until it is active and print how to reach it.
func Example() {
	api := newFakeAPI() // stands in for https://gpuaas.example.com
	defer api.Close()
	ctx := context.Background()

	c, err := client.New(api.URL, client.WithAPIKey(fakeKey), client.WithProject(fakeProject))
	if err != nil {
		panic(err)
	}
	c.PollInterval = time.Millisecond
	skus, err := c.SKUs(ctx)
	if err != nil {
		panic(err)
	}
	limit := int64(1000) // pay at most 10.00 for this node; it is released before that
	a, err := c.CreateAllocation(ctx, client.CreateAllocation{SkuId: skus[0].Id, MaxTotalCostMinor: &limit})
	if err != nil {
		panic(err)
	}
	a, err = c.WaitActive(ctx, a.Id, func(a client.Allocation) { fmt.Println("state:", a.State) })
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Access.Command)
	// Output:
	// state: provisioning
	// state: active
	// ssh -p 2222 ga_00000001@127.0.0.1
}

// Listing is an iterator that follows the API's cursors.
func ExampleClient_Allocations() {
	api := newFakeAPI()
	defer api.Close()
	ctx := context.Background()
	c, _ := client.New(api.URL, client.WithAPIKey(fakeKey), client.WithProject(fakeProject))
	for range 3 {
		if _, err := c.CreateAllocation(ctx, client.CreateAllocation{SkuId: "h100-80g-x1"}); err != nil {
			panic(err)
		}
	}
	for a, err := range c.Allocations(ctx, client.ListAllocations{}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(a.Id, a.State)
	}
	// Output:
	// 00000000-0000-4000-8000-000000000003 requested
	// 00000000-0000-4000-8000-000000000002 requested
	// 00000000-0000-4000-8000-000000000001 requested
}

// A service account authenticates with its client id and secret; the
// client exchanges them for short-lived tokens and renews them.
func ExampleWithServiceAccount() {
	api := newFakeAPI()
	defer api.Close()
	c, _ := client.New(api.URL, client.WithServiceAccount(fakeClient, fakeSecret), client.WithProject(fakeProject))
	skus, err := c.SKUs(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(skus[0].Id, skus[0].HourlyPriceMinor, skus[0].Available)
	// Output:
	// h100-80g-x1 299 2
}

// Errors carry the API's stable code: switch on it, not on the message.
func ExampleErrorCode() {
	api := newFakeAPI()
	defer api.Close()
	c, _ := client.New(api.URL, client.WithAPIKey(fakeKey), client.WithProject(fakeProject))
	limit := int64(200)
	_, err := c.CreateAllocation(context.Background(), client.CreateAllocation{SkuId: "h100-80g-x1", MaxHourlyPriceMinor: &limit})
	switch client.ErrorCode(err) {
	case client.CodeMaxHourlyPrice:
		fmt.Println("too expensive for this job")
	case client.CodeSpendCapReached, client.CodeInsufficientBalance:
		fmt.Println("out of budget")
	}
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.StatusCode, e.Code)
	}
	// Output:
	// too expensive for this job
	// 422 max_hourly_price_exceeded
}
