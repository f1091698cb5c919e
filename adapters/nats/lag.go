package nats

import (
	"context"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/ports"
)

var _ ports.ConsumerMonitor = (*Bus)(nil)

// ConsumerLag implements [ports.ConsumerMonitor]: each durable consumer of
// the platform's topology with the messages it has not been delivered yet,
// those delivered but not acked, and how many were redelivered.
func (b *Bus) ConsumerLag(ctx context.Context) ([]admin.ConsumerLag, error) {
	var out []admin.ConsumerLag
	for _, s := range event.Streams {
		for _, c := range s.Consumers {
			cons, err := b.js.Consumer(ctx, s.Name, c.Durable)
			if err != nil {
				return nil, translate(err)
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return nil, translate(err)
			}
			out = append(out, admin.ConsumerLag{Stream: s.Name, Durable: c.Durable, Pending: info.NumPending,
				AckPending: info.NumAckPending, Redelivered: info.NumRedelivered})
		}
	}
	return out, nil
}
