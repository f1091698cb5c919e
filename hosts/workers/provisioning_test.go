package workers_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/adapters/temporal/temporaltest"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/poll"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// allocs is an in-test temporal.AllocationTransitions: core/allocation's
// state machine over a map.
type allocs struct {
	mu     sync.Mutex
	states map[string]allocation.State
}

func (a *allocs) set(id string, s allocation.State) { a.mu.Lock(); a.states[id] = s; a.mu.Unlock() }
func (a *allocs) state(id string) allocation.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.states[id]
}
func (a *allocs) move(id string, to allocation.State) (allocation.Allocation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	from, ok := a.states[id]
	if !ok {
		return allocation.Allocation{}, fault.NotFound("allocation", id)
	}
	if from != to {
		if err := allocation.Transition(from, to); err != nil {
			return allocation.Allocation{}, err
		}
		a.states[id] = to
	}
	return allocation.Allocation{ID: id, State: to}, nil
}
func (a *allocs) MarkProvisioning(_ context.Context, id string) (allocation.Allocation, error) {
	return a.move(id, allocation.Provisioning)
}
func (a *allocs) MarkActive(_ context.Context, id string) (allocation.Allocation, error) {
	return a.move(id, allocation.Active)
}
func (a *allocs) MarkFailed(_ context.Context, id, _ string) (allocation.Allocation, error) {
	return a.move(id, allocation.Failed)
}
func (a *allocs) MarkReleased(_ context.Context, id string) (allocation.Allocation, error) {
	return a.move(id, allocation.Released)
}
func (a *allocs) MarkReleaseFailed(_ context.Context, id, _ string) (allocation.Allocation, error) {
	return a.move(id, allocation.ReleaseFailed)
}

// tasks is an in-test temporal.TaskRunner recording what each allocation got.
type tasks struct {
	mu  sync.Mutex
	got map[string][]string
}

func (r *tasks) RunTask(_ context.Context, _ string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	desc := string(typ)
	if p, ok := params.(nodetask.ProvisionUserParams); ok {
		desc += " keys=" + strings.Join(p.AuthorizedKeys, "|") + " user=" + p.Username
	}
	r.got[allocationID] = append(r.got[allocationID], desc)
	return nodetask.Result{Succeeded: true}, nil
}
func (r *tasks) of(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got[id]...)
}

// access is an in-test temporal.AccessResolver: key id → key.
type access map[string]string

func (a access) ResolveAccess(_ context.Context, _ string, keyIDs []string) (temporal.Access, error) {
	out := temporal.Access{UserCAKey: a["ca"]}
	for _, id := range keyIDs {
		out.AuthorizedKeys = append(out.AuthorizedKeys, a[id])
	}
	return out, nil
}

func pubKey(t *testing.T) string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

func envelope(t *testing.T, id, subject, allocationID string, payload any) event.Envelope {
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return event.Envelope{ID: id, Type: subject, Version: 1, OccurredAt: time.Now().UTC(),
		AggregateType: "allocation", AggregateID: allocationID, Payload: b}
}

// TestProvisioningWorkerEndToEnd runs the module on embedded JetStream and
// a real Temporal dev server: events in, workflows run, transitions out.
func TestProvisioningWorkerEndToEnd(t *testing.T) {
	tsrv := temporaltest.DevServer(t)
	nsrv, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nsrv.Shutdown)

	al := &allocs{states: map[string]allocation.State{}}
	tk := &tasks{got: map[string][]string{}}
	key, caKey := pubKey(t), pubKey(t)
	var pub ports.Publisher
	app := fx.New(
		fx.NopLogger,
		fx.Supply(slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.Supply(nats.Config{URL: nsrv.ClientURL()}),
		nats.Module,
		fx.Supply(temporal.Config{HostPort: tsrv.HostPort(), TaskQueue: "wk-" + services.RandomSuffix(4)}),
		temporal.Module,
		fx.Supply(workers.ProvisioningConfig{NakDelay: 100 * time.Millisecond,
			Retry: temporal.Retry{MaxAttempts: 2, InitialInterval: 100 * time.Millisecond}}),
		fx.Provide(
			func() temporal.AllocationTransitions { return al },
			func() temporal.TaskRunner { return tk },
			func() temporal.AccessResolver { return access{"k1": key, "ca": caKey} },
		),
		workers.ProvisioningModule,
		fx.Populate(&pub),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Error(err)
		}
	})

	id := "0198f3a2-" + services.RandomSuffix(4)
	al.set(id, allocation.Requested)
	requested := allocationsvc.RequestedPayload{AllocationID: id, NodeID: "node-1", UserID: "u1",
		Username: nodetask.UsernameFor(id), SSHKeyIDs: []string{"k1"}}
	if errs := pub.PublishBatch(ctx, fakes.Encode(t, envelope(t, "evt-req-"+id, event.AllocationRequested, id, requested))); errs[0] != nil {
		t.Fatal(errs[0])
	}
	poll.Until(t, 60*time.Second, "active", func() bool { return al.state(id) == allocation.Active })
	got := tk.of(id)
	want := "allocation.provision_user keys=" + key + " user=" + nodetask.UsernameFor(id)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("node tasks %q, want [%q]", got, want)
	}

	// The same allocation requested again under another event id (a
	// replayed outbox row after the dedupe window): no second run.
	if errs := pub.PublishBatch(ctx, fakes.Encode(t, envelope(t, "evt-req2-"+id, event.AllocationRequested, id, requested))); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// An event without an allocation is dropped, not redelivered forever.
	if errs := pub.PublishBatch(ctx, fakes.Encode(t, envelope(t, "evt-bad-"+id, event.AllocationRequested, "", map[string]string{}))); errs[0] != nil {
		t.Fatal(errs[0])
	}

	// A later event on the same consumer: once it is handled, the two
	// before it were too (one consumer handles its messages in order).
	sentinel := id + "-s"
	al.set(sentinel, allocation.Requested)
	if errs := pub.PublishBatch(ctx, fakes.Encode(t, envelope(t, "evt-req-"+sentinel, event.AllocationRequested, sentinel,
		allocationsvc.RequestedPayload{AllocationID: sentinel, NodeID: "node-2", UserID: "u1", SSHKeyIDs: []string{"k1"}}))); errs[0] != nil {
		t.Fatal(errs[0])
	}
	poll.Until(t, 60*time.Second, "sentinel active", func() bool { return al.state(sentinel) == allocation.Active })
	if got := tk.of(id); len(got) != 1 {
		t.Fatalf("the duplicate request provisioned again: %q", got)
	}

	al.set(id, allocation.Releasing)
	release := allocationsvc.StatePayload{AllocationID: id, NodeID: "node-1", UserID: "u1", Username: nodetask.UsernameFor(id), State: "releasing"}
	if errs := pub.PublishBatch(ctx, fakes.Encode(t, envelope(t, "evt-rel-"+id, event.AllocationReleaseReq, id, release))); errs[0] != nil {
		t.Fatal(errs[0])
	}
	poll.Until(t, 60*time.Second, "released", func() bool { return al.state(id) == allocation.Released })
	got = tk.of(id)
	if len(got) != 2 || !strings.HasPrefix(got[0], string(nodetask.ProvisionUser)) || got[1] != string(nodetask.RevokeUser) {
		t.Fatalf("node tasks %q", got)
	}
}

// recordedMessage is a delivered message whose settlement is observed.
func recordedMessage(env event.Envelope) (ports.Message, *settled) {
	s := &settled{}
	return ports.Message{Envelope: env,
		Ack: func() error { s.mu.Lock(); s.acked++; s.mu.Unlock(); return nil },
		Nak: func(d time.Duration) error { s.mu.Lock(); s.nakked = append(s.nakked, d); s.mu.Unlock(); return nil },
	}, s
}

type settled struct {
	mu     sync.Mutex
	acked  int
	nakked []time.Duration
}

func TestProvisioningConsumerNaksWhenTemporalIsDown(t *testing.T) {
	t.Parallel()
	c, err := temporal.New(temporal.Config{HostPort: "127.0.0.1:1", RPCTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := workers.NewProvisioningConsumer(workers.ProvisioningConfig{NakDelay: 7 * time.Second}, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		env       event.Envelope
		handle    func(context.Context, ports.Message)
		wantAck   int
		wantNakks int
	}{
		{"requested, engine down", envelope(t, "e1", event.AllocationRequested, "a1",
			allocationsvc.RequestedPayload{AllocationID: "a1", NodeID: "n1"}), pc.HandleRequested, 0, 1},
		{"release, engine down", envelope(t, "e2", event.AllocationReleaseReq, "a1",
			allocationsvc.StatePayload{AllocationID: "a1", NodeID: "n1"}), pc.HandleRelease, 0, 1},
		{"payload not JSON", event.Envelope{ID: "e3", Type: event.AllocationRequested, Payload: json.RawMessage(`"x"`)}, pc.HandleRequested, 1, 0},
		{"no allocation id", envelope(t, "e4", event.AllocationRequested, "", map[string]string{}), pc.HandleRequested, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, s := recordedMessage(tc.env)
			tc.handle(context.Background(), m)
			if s.acked != tc.wantAck || len(s.nakked) != tc.wantNakks {
				t.Fatalf("acked %d nakked %v", s.acked, s.nakked)
			}
			for _, d := range s.nakked {
				if d != 7*time.Second {
					t.Fatalf("nak delay %v", d)
				}
			}
		})
	}
}

func TestProvisioningModuleValidates(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(
		fx.Supply(slog.New(slog.NewTextHandler(io.Discard, nil))),
		fx.Supply(nats.Config{URL: "nats://127.0.0.1:1"}),
		nats.Module,
		fx.Supply(temporal.Config{HostPort: "127.0.0.1:1"}),
		temporal.Module,
		fx.Provide(
			func() temporal.AllocationTransitions { return &allocs{} },
			func() temporal.TaskRunner { return &tasks{} },
			func() temporal.AccessResolver { return access{} },
		),
		workers.ProvisioningModule,
	)
	if err != nil {
		t.Fatal(err)
	}
}
