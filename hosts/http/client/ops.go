package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// Me is who the caller is: user, tenant, and the projects it can act in.
func (c *Client) Me(ctx context.Context) (Me, error) {
	resp, err := c.gen.GetMe(ctx, &api.GetMeParams{})
	var out Me
	return out, decode(resp, err, &out, http.StatusOK)
}

// DefaultProject is the caller's default project (the one a new tenant
// starts with), else its only one; "" when neither exists.
func (c *Client) DefaultProject(ctx context.Context) (string, error) {
	me, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	return DefaultProjectOf(me), nil
}

// DefaultProjectOf is DefaultProject of what Me answered.
func DefaultProjectOf(me Me) string {
	for _, p := range me.Projects {
		if p.IsDefault {
			return p.Id
		}
	}
	if len(me.Projects) == 1 {
		return me.Projects[0].Id
	}
	return ""
}

// SKUs is the catalogue with how many nodes of each are free now.
func (c *Client) SKUs(ctx context.Context) ([]SKU, error) {
	resp, err := c.gen.ListSKUs(ctx)
	var out api.SKUList
	return out.Skus, decode(resp, err, &out, http.StatusOK)
}

// CreateAllocation requests a node in the active project. The request
// carries an idempotency key, the same on every retry: a retried create
// never makes two allocations.
func (c *Client) CreateAllocation(ctx context.Context, req CreateAllocation) (Allocation, error) {
	resp, err := c.gen.CreateAllocation(ctx, &api.CreateAllocationParams{}, req)
	var out Allocation
	return out, decode(resp, err, &out, http.StatusCreated)
}

// Quote answers what CreateAllocation would do with req — price, balance,
// runway after it, free nodes, every refusal — creating nothing.
func (c *Client) Quote(ctx context.Context, req CreateAllocation) (Quote, error) {
	resp, err := c.gen.QuoteAllocation(ctx, &api.QuoteAllocationParams{}, req)
	var out Quote
	return out, decode(resp, err, &out, http.StatusOK)
}

// GetAllocation reads one allocation (with its SSH access while active).
func (c *Client) GetAllocation(ctx context.Context, id string) (Allocation, error) {
	resp, err := c.gen.GetAllocation(ctx, id)
	var out Allocation
	return out, decode(resp, err, &out, http.StatusOK)
}

// ReleaseAllocation asks for an allocation to be released (it moves to
// releasing; billing stops now).
func (c *Client) ReleaseAllocation(ctx context.Context, id string) (Allocation, error) {
	resp, err := c.gen.ReleaseAllocation(ctx, id, &api.ReleaseAllocationParams{})
	var out Allocation
	return out, decode(resp, err, &out, http.StatusOK)
}

// ListAllocations selects allocations of the active project.
type ListAllocations struct {
	State    AllocationState // "" for all
	PageSize int             // 0: the server's default
}

// Allocations iterates over the active project's allocations, newest
// first, page by page. A failed page ends the iteration with its error.
func (c *Client) Allocations(ctx context.Context, o ListAllocations) iter.Seq2[Allocation, error] {
	return pages(func(cursor *string) ([]Allocation, *string, error) {
		p := &api.ListAllocationsParams{Cursor: cursor}
		if o.State != "" {
			st := o.State
			p.Status = &st
		}
		if o.PageSize > 0 {
			p.Limit = &o.PageSize
		}
		resp, err := c.gen.ListAllocations(ctx, p)
		var out api.AllocationPage
		err = decode(resp, err, &out, http.StatusOK)
		return out.Allocations, out.NextCursor, err
	})
}

// pages turns a cursor-paginated listing into an iterator.
func pages[T any](page func(cursor *string) ([]T, *string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var cursor *string
		for {
			items, next, err := page(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == nil || *next == "" {
				return
			}
			cursor = next
		}
	}
}

// Settled reports whether an allocation has reached a state it leaves only
// by a release: active, or an end (failed, released, release_failed).
func Settled(s AllocationState) bool {
	return s == StateActive || s == StateFailed || s == StateReleased || s == StateReleaseFailed
}

// firstPoll is WaitFor's first wait; each next one doubles, up to
// PollInterval.
const firstPoll = 100 * time.Millisecond

// WaitFor polls an allocation until done says it is finished — after
// 100 ms, then twice as long each time, up to every PollInterval — calling
// onChange (when not nil) each time its state changes. It returns the last
// allocation read; ctx bounds the wait.
func (c *Client) WaitFor(ctx context.Context, id string, done func(Allocation) bool, onChange func(Allocation)) (Allocation, error) {
	var last AllocationState
	wait := min(firstPoll, c.PollInterval)
	for {
		a, err := c.GetAllocation(ctx, id)
		if err != nil {
			return a, err
		}
		if a.State != last && onChange != nil {
			onChange(a)
		}
		last = a.State
		if done(a) {
			return a, nil
		}
		if err := c.sleep(ctx, wait); err != nil {
			return a, err
		}
		wait = min(2*wait, c.PollInterval)
	}
}

// WaitActive waits until the allocation is active, and fails with an
// *AllocationFailedError when it ends otherwise.
func (c *Client) WaitActive(ctx context.Context, id string, onChange func(Allocation)) (Allocation, error) {
	a, err := c.WaitFor(ctx, id, func(a Allocation) bool { return Settled(a.State) }, onChange)
	if err == nil && a.State != StateActive {
		return a, &AllocationFailedError{Allocation: a}
	}
	return a, err
}

// AllocationFailedError is an allocation that ended without becoming
// active.
type AllocationFailedError struct{ Allocation Allocation }

func (e *AllocationFailedError) Error() string {
	code := ""
	if e.Allocation.FailureCode != nil {
		code = " (" + *e.Allocation.FailureCode + ")"
	}
	return fmt.Sprintf("allocation %s ended %s%s", e.Allocation.Id, e.Allocation.State, code)
}

// SSHKeys lists the caller's SSH public keys.
func (c *Client) SSHKeys(ctx context.Context) ([]SSHKey, error) {
	resp, err := c.gen.ListSSHKeys(ctx)
	var out api.SSHKeyList
	return out.SshKeys, decode(resp, err, &out, http.StatusOK)
}

// AddSSHKey registers a public key (authorized_keys format).
func (c *Client) AddSSHKey(ctx context.Context, name, publicKey string) (SSHKey, error) {
	resp, err := c.gen.AddSSHKey(ctx, &api.AddSSHKeyParams{}, api.AddSSHKeyRequest{Name: name, PublicKey: publicKey})
	var out SSHKey
	return out, decode(resp, err, &out, http.StatusCreated)
}

// DeleteSSHKey removes one of the caller's keys.
func (c *Client) DeleteSSHKey(ctx context.Context, id string) error {
	resp, err := c.gen.DeleteSSHKey(ctx, id, &api.DeleteSSHKeyParams{})
	return decode(resp, err, nil, http.StatusNoContent)
}

// Balance is the tenant's balance with its burn rate and runway.
func (c *Client) Balance(ctx context.Context) (BillingBalance, error) {
	resp, err := c.gen.GetBillingBalance(ctx)
	var out BillingBalance
	return out, decode(resp, err, &out, http.StatusOK)
}

// Usage iterates over the tenant's usage records, newest first.
func (c *Client) Usage(ctx context.Context) iter.Seq2[UsageRecord, error] {
	return pages(func(cursor *string) ([]UsageRecord, *string, error) {
		resp, err := c.gen.ListUsage(ctx, &api.ListUsageParams{Cursor: cursor})
		var out api.UsagePage
		err = decode(resp, err, &out, http.StatusOK)
		return out.Usage, out.NextCursor, err
	})
}

// Ledger iterates over the tenant's ledger entries, newest first.
func (c *Client) Ledger(ctx context.Context) iter.Seq2[LedgerEntry, error] {
	return pages(func(cursor *string) ([]LedgerEntry, *string, error) {
		resp, err := c.gen.ListLedgerEntries(ctx, &api.ListLedgerEntriesParams{Cursor: cursor})
		var out api.LedgerPage
		err = decode(resp, err, &out, http.StatusOK)
		return out.Entries, out.NextCursor, err
	})
}

// UsageCSV streams the tenant's usage as CSV (RFC 4180) into w.
func (c *Client) UsageCSV(ctx context.Context, w io.Writer) error {
	resp, err := c.gen.ExportUsageCSV(ctx)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return errorOf(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// TopUp opens a checkout for amountMinor of currency; pay at CheckoutUrl.
func (c *Client) TopUp(ctx context.Context, amountMinor int64, currency string) (CheckoutSession, error) {
	resp, err := c.gen.CreateCheckoutSession(ctx, &api.CreateCheckoutSessionParams{},
		api.CreateCheckoutSessionRequest{AmountMinor: amountMinor, Currency: currency})
	var out CheckoutSession
	return out, decode(resp, err, &out, http.StatusCreated)
}

// APIKeys lists the caller's live API keys (people signed in only).
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	resp, err := c.gen.ListAPIKeys(ctx)
	var out api.APIKeyList
	return out.ApiKeys, decode(resp, err, &out, http.StatusOK)
}

// CreateAPIKey makes a personal API key; its secret is in the answer, once.
func (c *Client) CreateAPIKey(ctx context.Context, req CreateAPIKey) (CreatedAPIKey, error) {
	resp, err := c.gen.CreateAPIKey(ctx, req)
	var out CreatedAPIKey
	return out, decode(resp, err, &out, http.StatusCreated)
}

// RevokeAPIKey revokes one of the caller's API keys.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	resp, err := c.gen.RevokeAPIKey(ctx, id, &api.RevokeAPIKeyParams{})
	return decode(resp, err, nil, http.StatusNoContent)
}

// CreateServiceAccount creates a service account in a project (tenant
// owners and admins, signed in).
func (c *Client) CreateServiceAccount(ctx context.Context, projectID, name, role string) (ServiceAccount, error) {
	resp, err := c.gen.CreateServiceAccount(ctx, projectID, &api.CreateServiceAccountParams{},
		api.CreateServiceAccountRequest{Name: name, Role: api.CreateServiceAccountRequestRole(role)})
	var out ServiceAccount
	return out, decode(resp, err, &out, http.StatusCreated)
}

// CreateCredential adds a client secret to a service account (at most two
// active); the secret is in the answer, once.
func (c *Client) CreateCredential(ctx context.Context, projectID, serviceAccountID string) (CreatedCredential, error) {
	resp, err := c.gen.CreateServiceAccountCredential(ctx, projectID, serviceAccountID,
		&api.CreateServiceAccountCredentialParams{}, api.CreateCredentialRequest{})
	var out CreatedCredential
	return out, decode(resp, err, &out, http.StatusCreated)
}

// RevokeCredential revokes one credential of a service account.
func (c *Client) RevokeCredential(ctx context.Context, projectID, serviceAccountID, credentialID string) error {
	resp, err := c.gen.RevokeServiceAccountCredential(ctx, projectID, serviceAccountID, credentialID,
		&api.RevokeServiceAccountCredentialParams{})
	return decode(resp, err, nil, http.StatusNoContent)
}

// DeleteServiceAccount disables a service account and revokes its
// credentials.
func (c *Client) DeleteServiceAccount(ctx context.Context, projectID, serviceAccountID string) error {
	resp, err := c.gen.DeleteServiceAccount(ctx, projectID, serviceAccountID, &api.DeleteServiceAccountParams{})
	return decode(resp, err, nil, http.StatusNoContent)
}
