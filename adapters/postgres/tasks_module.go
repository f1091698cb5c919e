package postgres

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// TasksModule provides the node task queue as [ports.TaskQueue]. It needs
// *DB from [Module]; a ports.Clock, a *slog.Logger and a *TaskStoreConfig
// are used when the graph has them. The LISTEN connection closes on stop.
var TasksModule = fx.Module("postgres-tasks",
	fx.Provide(
		fx.Private,
		fx.Annotate(provideTaskStore, fx.ParamTags(``, ``, `optional:"true"`, `optional:"true"`, `optional:"true"`)),
	),
	fx.Provide(
		fx.Annotate(func(s *TaskStore) *TaskStore { return s }, fx.As(new(ports.TaskQueue))),
	),
)

func provideTaskStore(lc fx.Lifecycle, db *DB, cfg *TaskStoreConfig, clock ports.Clock, logger *slog.Logger) (*TaskStore, error) {
	c := TaskStoreConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.Clock == nil {
		c.Clock = clock
	}
	if c.Logger == nil && logger != nil {
		c.Logger = logger.With("component", "task-queue")
	}
	s, err := NewTaskStore(db, c)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(s.Close))
	return s, nil
}
