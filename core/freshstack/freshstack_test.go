package freshstack

import (
	"errors"
	"testing"
)

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	if v, err := Run(func() (int, error) { return 7, boom }); v != 7 || err != boom {
		t.Fatalf("Run = %d, %v; want 7, boom", v, err)
	}
	defer func() {
		if p := recover(); p != "panicked" {
			t.Fatalf("recovered %v; want the panic raised again in the caller", p)
		}
	}()
	_, _ = Run(func() (int, error) { panic("panicked") })
	t.Fatal("the panic did not reach the caller")
}
