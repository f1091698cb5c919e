package fakes_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

func TestObjectStoreContract(t *testing.T) {
	clock := fakes.NewClock(time.Time{})
	contract.RunObjectStoreSuite(t, contract.ObjectStoreHarness{
		New: func(t *testing.T) contract.Objects {
			s := fakes.NewObjectStore()
			s.Clock = clock
			srv := httptest.NewServer(s)
			t.Cleanup(srv.Close)
			s.BaseURL = srv.URL
			return s
		},
		Advance:     clock.Advance,
		PartSize:    1 << 20,
		MinPartSize: 1 << 10,
	})
}
