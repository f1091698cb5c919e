package temporal

// AbandonForTest drops the server's directory lock without stopping it, as
// a SIGKILL of the owning process would on a platform without a
// parent-death signal, and returns the server's pid.
func (d *DevServer) AbandonForTest() int {
	_ = d.lock.Unlock()
	return d.cmd.Process.Pid
}
