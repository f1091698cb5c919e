// Package freshstack runs a call on a goroutine of its own, so the stack it
// grows is not kept by a caller that then parks for long.
package freshstack

// Run runs f on a new goroutine and waits for it; a panic in f is raised
// again in the caller. A goroutine's stack only grows while it runs, and
// the collector halves it only while less than a quarter is in use: the
// agent gateway's long polls run their checks and queries here, so the
// goroutines they park on — one per connected agent — keep the small stack
// they started with (doc/performance.md, agent gateway at fleet scale).
func Run[T any](f func() (T, error)) (T, error) {
	type result struct {
		v        T
		err      error
		panicked any
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panicked = p
			}
			ch <- r
		}()
		r.v, r.err = f()
	}()
	r := <-ch
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.v, r.err
}
