package temporal

import (
	"go.temporal.io/api/workflowservice/v1"
	tlog "go.temporal.io/sdk/log"
)

// quietLogger drops the SDK's logs while a dev server comes up: connection
// refusals are expected until it listens.
type quietLogger struct{}

var _ tlog.Logger = quietLogger{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func describeDefault() *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: DefaultNamespace}
}
