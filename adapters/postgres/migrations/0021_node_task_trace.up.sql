-- The trace context (W3C traceparent) of whatever enqueued a node task, so
-- the agent gateway puts the agent's work into the allocation's trace
-- (doc/observability.md). Outside the signed envelope: the agent never sees
-- or needs it. '' when tracing is off. A constant default is metadata only.
ALTER TABLE node_tasks ADD COLUMN trace_parent text NOT NULL DEFAULT '';
