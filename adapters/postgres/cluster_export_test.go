package postgres

// AbandonForTest drops the cluster's directory lock without stopping its
// server, as a SIGKILL of the owning process would on a platform without a
// parent-death signal, and returns the server's pid.
func (c *Cluster) AbandonForTest() int {
	_ = c.lock.Unlock()
	return c.cmd.Process.Pid
}
