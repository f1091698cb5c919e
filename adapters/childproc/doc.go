// Package childproc runs the helper processes `gpuaas dev` starts (the
// private PostgreSQL cluster, the Temporal dev server) so that a crash of
// their parent does not leave them running and blocking the next start:
// [Start] ties a child's life to this process (Linux parent-death signal),
// [LockFile] lets one process own a directory at a time (released by the
// kernel when the owner dies, even by SIGKILL), and [Cmdline], [Running] and
// [Stop] let the next owner recognise a leftover from a crashed run and stop
// it.
package childproc
