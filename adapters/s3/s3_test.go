package s3_test

import (
	"testing"

	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestObjectStoreContract runs the object store contract against
// versitygw (a real S3 gateway), one per test.
func TestObjectStoreContract(t *testing.T) {
	contract.RunObjectStoreSuite(t, contract.ObjectStoreHarness{
		New: func(t *testing.T) contract.Objects { return services.S3(t).Store },
	})
}
