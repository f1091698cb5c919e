package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/gpuaas/gpuaas/core/nodetask"
)

// recentLimit is how many recent tasks the window remembers with their
// results, so a task re-delivered after a lost report is answered with its
// first result instead of running again.
const recentLimit = 64

// ReplayWindow remembers the highest sequence number seen and the last few
// tasks with their results, persisted to a file (0600) so a restart does
// not reopen the window.
type ReplayWindow struct {
	mu   sync.Mutex
	path string
	st   replayState
}

type replayState struct {
	HighestSeq uint64        `json:"highest_seq"`
	Recent     []recentEntry `json:"recent"`
}

type recentEntry struct {
	TaskID string           `json:"task_id"`
	Seq    uint64           `json:"seq"`
	Result *nodetask.Result `json:"result,omitempty"`
}

// OpenReplayWindow loads the window from path ("" keeps it in memory).
func OpenReplayWindow(path string) (*ReplayWindow, error) {
	w := &ReplayWindow{path: path}
	if path == "" {
		return w, nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return w, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(b, &w.st); err != nil {
		return nil, fmt.Errorf("replay window %s is corrupt: %w", path, err)
	}
	return w, nil
}

// Highest returns the highest sequence number accepted.
func (w *ReplayWindow) Highest() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.HighestSeq
}

// Check refuses a sequence number that is not above every one seen.
func (w *ReplayWindow) Check(taskID string, seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq == 0 {
		return errors.New("sequence number 0 is never issued")
	}
	if seq <= w.st.HighestSeq {
		return fmt.Errorf("sequence number %d is not above %d", seq, w.st.HighestSeq)
	}
	for _, r := range w.st.Recent {
		if r.TaskID == taskID {
			return errors.New("task id seen before")
		}
	}
	return nil
}

// Mark records the task as seen and persists the window.
func (w *ReplayWindow) Mark(taskID string, seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq > w.st.HighestSeq {
		w.st.HighestSeq = seq
	}
	w.st.Recent = append(w.st.Recent, recentEntry{TaskID: taskID, Seq: seq})
	if len(w.st.Recent) > recentLimit {
		w.st.Recent = w.st.Recent[len(w.st.Recent)-recentLimit:]
	}
	return w.saveLocked()
}

// Remember stores the result reported for a seen task.
func (w *ReplayWindow) Remember(r nodetask.Result) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.st.Recent {
		if w.st.Recent[i].TaskID == r.TaskID {
			rr := r
			w.st.Recent[i].Result = &rr
			return w.saveLocked()
		}
	}
	return nil
}

// ResultOf returns the remembered result of a recent task, if any.
func (w *ReplayWindow) ResultOf(taskID string) (nodetask.Result, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.st.Recent {
		if r.TaskID == taskID && r.Result != nil {
			return *r.Result, true
		}
	}
	return nodetask.Result{}, false
}

func (w *ReplayWindow) saveLocked() error {
	if w.path == "" {
		return nil
	}
	b, err := json.Marshal(w.st)
	if err != nil {
		return err
	}
	return writeFileAtomic(w.path, b, 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// leaves the old or the new content, never a torn file.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
