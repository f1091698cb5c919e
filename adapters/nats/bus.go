package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the connection and the topology EnsureStreams creates.
type Config struct {
	// URL is one server URL or a comma-separated list. It may carry
	// credentials; it is never logged.
	URL string
	// CredsFile is an optional NATS user credentials (JWT + nkey) file.
	CredsFile string
	// Name identifies the client in server monitoring. Default "gpuaas".
	Name string
	// ConnectTimeout bounds each dial. Default 5s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts. The client
	// reconnects forever: the bus is never given up on. Default 1s.
	ReconnectWait time.Duration
	// RequestTimeout bounds JetStream API calls and acks. Default 5s.
	RequestTimeout time.Duration

	// PublishTimeout bounds how long PublishBatch waits for acks before
	// reporting the missing ones as failed. Default 5s.
	PublishTimeout time.Duration
	// MaxPendingPublishes caps unacknowledged async publishes; a batch
	// larger than this is throttled, not refused. Default 4096.
	MaxPendingPublishes int

	// Replicas per stream. Default 1 (raise it on a cluster).
	Replicas int
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values.
	// A relay that republishes an event within it (after a crash between
	// publish and marking) does not create a second message. Default 2m.
	DuplicateWindow time.Duration
	// MaxAge bounds how long events stay in a stream. Default 7 days.
	MaxAge time.Duration

	// MaxDeliver caps deliveries per message per consumer. Default 20.
	MaxDeliver int
	// BackOff is the redelivery schedule for messages that were neither
	// acked nor nakked; its first step is the ack wait. Must be shorter
	// than MaxDeliver. Default 30s, 1m, 5m, 15m.
	BackOff []time.Duration
	// FetchBatch is how many messages a consumer buffers. Default 256.
	FetchBatch int

	// Logger receives connection state changes. Default: discard.
	Logger *slog.Logger
	// TracerProvider, when set, traces publishes (a producer span per event
	// that carries a trace context, continued from it) and deliveries (a
	// consumer span continued from the message's traceparent header). nil:
	// no spans; a stored trace context is still forwarded in the headers.
	TracerProvider trace.TracerProvider
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("nats: URL is required")
	}
	for _, u := range strings.Split(c.URL, ",") {
		if _, err := url.Parse(strings.TrimSpace(u)); err != nil {
			return errors.New("nats: URL is not a valid URL") // the URL may hold a password: not echoed
		}
	}
	if c.ConnectTimeout < 0 || c.ReconnectWait < 0 || c.RequestTimeout < 0 || c.PublishTimeout < 0 ||
		c.DuplicateWindow < 0 || c.MaxAge < 0 || c.MaxPendingPublishes < 0 || c.Replicas < 0 ||
		c.MaxDeliver < 0 || c.FetchBatch < 0 {
		return errors.New("nats: config values must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Name == "" {
		c.Name = "gpuaas"
	}
	def(&c.ConnectTimeout, 5*time.Second)
	def(&c.ReconnectWait, time.Second)
	def(&c.RequestTimeout, 5*time.Second)
	def(&c.PublishTimeout, 5*time.Second)
	def(&c.DuplicateWindow, 2*time.Minute)
	def(&c.MaxAge, 7*24*time.Hour)
	defInt(&c.MaxPendingPublishes, 4096)
	defInt(&c.Replicas, 1)
	defInt(&c.MaxDeliver, 20)
	defInt(&c.FetchBatch, 256)
	if c.BackOff == nil {
		c.BackOff = []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute}
	}
	for _, d := range c.BackOff {
		if d <= 0 {
			return errors.New("nats: BackOff steps must be positive")
		}
	}
	if len(c.BackOff) >= c.MaxDeliver {
		return errors.New("nats: MaxDeliver must exceed the number of BackOff steps")
	}
	if c.DuplicateWindow > c.MaxAge {
		return errors.New("nats: DuplicateWindow must not exceed MaxAge")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Bus is a JetStream connection acting as the platform's event bus.
type Bus struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	tracer trace.Tracer // nil: tracing off
}

var (
	_ ports.Publisher   = (*Bus)(nil)
	_ ports.Subscriber  = (*Bus)(nil)
	_ ports.HealthCheck = (*Bus)(nil)
)

// Connect dials NATS and opens JetStream. It fails if no server answers
// now; once connected, the client reconnects on its own forever.
func Connect(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "nats", "servers", redactURL(cfg.URL))
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", redactErr(err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats async error", "err", redactErr(err))
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	// nats.Connect takes no context; honour ctx by not waiting past it.
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URL, opts...)
		done <- result{nc, err}
	}()
	var nc *nats.Conn
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fault.Unavailable("event bus unavailable", redactErr(r.err))
		}
		nc = r.nc
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
	js, err := jetstream.New(nc,
		jetstream.WithDefaultTimeout(cfg.RequestTimeout),
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPendingPublishes),
		// Without a timeout an unanswered publish would hold its slot
		// forever and eventually stall every publisher.
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
	)
	if err != nil {
		nc.Close()
		return nil, fault.Internal(err)
	}
	log.Info("nats connected")
	b := &Bus{cfg: cfg, nc: nc, js: js, log: log}
	if cfg.TracerProvider != nil {
		b.tracer = cfg.TracerProvider.Tracer("github.com/gpuaas/gpuaas/adapters/nats")
	}
	return b, nil
}

// JetStream exposes the JetStream context for tests and tools (stream
// inspection); use cases go through the ports.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Close drains the connection: pending publishes are flushed and active
// consumers finish their current message before it closes. It waits for
// the drain until ctx ends, then closes hard.
func (b *Bus) Close(ctx context.Context) error {
	if b.nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return nil
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		b.nc.Close()
		return ctx.Err()
	}
}

// EnsureStreams creates or updates every stream and durable consumer in
// [event.Streams]. It is idempotent; every replica may run it at start.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	return b.EnsureTopology(ctx, event.Streams)
}

// EnsureTopology is EnsureStreams for a given topology. It uses only
// features of NATS 2.9 (one filter subject per consumer).
func (b *Bus) EnsureTopology(ctx context.Context, streams []event.Stream) error {
	for _, s := range streams {
		if _, err := b.js.CreateOrUpdateStream(ctx, b.streamConfig(s)); err != nil {
			return fault.Unavailable("nats: ensure stream "+s.Name, err)
		}
		for _, c := range s.Consumers {
			if _, err := b.js.CreateOrUpdateConsumer(ctx, s.Name, b.consumerConfig(c)); err != nil {
				return fault.Unavailable("nats: ensure consumer "+s.Name+"/"+c.Durable, err)
			}
		}
	}
	return nil
}

func (b *Bus) streamConfig(s event.Stream) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       s.Name,
		Subjects:   s.Subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     b.cfg.MaxAge,
		Duplicates: b.cfg.DuplicateWindow,
		Replicas:   b.cfg.Replicas,
	}
}

func (b *Bus) consumerConfig(c event.Consumer) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Durable,
		FilterSubject: c.FilterSubject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.BackOff[0],
		MaxDeliver:    b.cfg.MaxDeliver,
		BackOff:       b.cfg.BackOff,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// PublishBatch implements [ports.Publisher]. Every event is published
// asynchronously with Nats-Msg-Id = event id, then the acks are awaited
// together, so a batch costs about one round trip instead of one each.
// The body goes out as encoded (the relay forwards what the outbox
// stored). An event JetStream already holds (same id inside the duplicate
// window) counts as published.
func (b *Bus) PublishBatch(ctx context.Context, events []event.Encoded) []error {
	errs := make([]error, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	stall := jetstream.WithStallWait(b.cfg.PublishTimeout)
	var spans []trace.Span // one per event when any carries a trace context
	defer func() {
		for i, sp := range spans {
			endSpan(sp, errs[i])
		}
	}()
	for i, e := range events {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if e.ID == "" || e.Type == "" || len(e.Body) == 0 {
			errs[i] = fault.Invalid("event", "event id, type and body are required")
			continue
		}
		// The dedupe id goes straight into the headers (what
		// jetstream.WithMsgID would write), one option less per event.
		msg := &nats.Msg{Subject: e.Type, Data: e.Body, Header: nats.Header{jetstream.MsgIDHeader: {e.ID}}}
		if e.TraceParent != "" {
			if spans == nil {
				spans = make([]trace.Span, len(events))
			}
			spans[i] = b.publishSpan(ctx, msg, e.ID, e.TraceParent)
		}
		f, err := b.js.PublishMsgAsync(msg, stall)
		if err != nil {
			errs[i] = translate(err)
			continue
		}
		futures[i] = f
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	for i, f := range futures {
		if f == nil {
			continue
		}
		// Settled futures first, so an ack that arrived is never reported
		// as a timeout just because the deadline passed meanwhile.
		select {
		case <-f.Ok():
			continue
		case err := <-f.Err():
			errs[i] = translate(err)
			continue
		default:
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = translate(err)
		case <-wctx.Done():
			errs[i] = fault.Unavailable("event bus did not acknowledge the publish in time", wctx.Err())
		}
	}
	return errs
}

// Consume implements [ports.Subscriber]. It binds to an existing durable
// pull consumer (EnsureStreams creates them), calls handle for each
// message in order, and returns nil when ctx ends. Messages whose body is
// not an envelope are terminated (never redelivered) and logged. Ack waits
// for the server's confirmation, so an acked message is not redelivered
// even if the connection drops right after.
func (b *Bus) Consume(ctx context.Context, stream, durable string, handle func(ctx context.Context, m ports.Message)) error {
	cons, err := b.js.Consumer(ctx, stream, durable)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return fault.NotFound("consumer", stream+"/"+durable).Wrap(err)
		}
		return translate(err)
	}
	log := b.log.With("stream", stream, "durable", durable)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var env event.Envelope
		if err := json.Unmarshal(msg.Data(), &env); err != nil || env.ID == "" {
			log.Error("terminating a message that is not an event envelope", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			return
		}
		hctx := ctx
		if b.tracer != nil {
			var span trace.Span
			hctx, span = b.consumeSpan(ctx, msg.Headers(), msg.Subject(), durable, env.ID)
			defer span.End()
		}
		handle(hctx, ports.Message{
			Envelope: env,
			Ack: func() error {
				actx, cancel := context.WithTimeout(context.Background(), b.cfg.RequestTimeout)
				defer cancel()
				return translate(msg.DoubleAck(actx))
			},
			Nak: func(delay time.Duration) error {
				if delay <= 0 {
					return translate(msg.Nak())
				}
				return translate(msg.NakWithDelay(delay))
			},
		})
	},
		jetstream.PullMaxMessages(b.cfg.FetchBatch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// Heartbeat misses and reconnects are expected during broker
			// restarts; the consumer recovers on its own.
			log.Debug("consume", "err", redactErr(err))
		}),
	)
	if err != nil {
		return translate(err)
	}
	select {
	case <-ctx.Done():
		cc.Stop()
		<-cc.Closed()
		return nil
	case <-cc.Closed():
		if ctx.Err() != nil {
			return nil
		}
		return fault.Unavailable("nats: consumer "+stream+"/"+durable+" stopped", nil)
	}
}

// Name implements [ports.HealthCheck].
func (b *Bus) Name() string { return "nats" }

// Check implements [ports.HealthCheck]: connected, and JetStream answers.
func (b *Bus) Check(ctx context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fault.Unavailable("nats is "+strings.ToLower(st.String()), nil)
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// translate maps client errors to fault kinds: anything the bus reports
// is a dependency problem the caller may retry.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fault.Unavailable("event bus unavailable", redactErr(err))
}

// redactURL masks credentials in a (comma-separated) server URL list.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "<invalid url>"
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

// redactErr returns err with any URL credentials in its text masked; the
// client echoes server URLs in some errors.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if !strings.Contains(s, "@") {
		return err
	}
	return &redactedError{msg: userinfo(s), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is working (timeouts, closed connections).
func (e *redactedError) Unwrap() error { return e.err }

// userinfo masks scheme://user:pass@ sequences.
func userinfo(s string) string {
	var out strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		out.WriteString(s[:i+3])
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/ \t\n,\"'")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			out.WriteString("***")
			rest = rest[at:]
		}
		s = rest
	}
}

// String never shows credentials.
func (c Config) String() string { return fmt.Sprintf("nats.Config{URL: %s}", redactURL(c.URL)) }
