package connecthost

import (
	"errors"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/core/fault"
)

// kindCode is the one place fault kinds become Connect codes; a test pins
// it. The fault's stable code travels in the ErrorCodeHeader metadata.
var kindCode = map[fault.Kind]connect.Code{
	fault.KindInvalid:         connect.CodeInvalidArgument,
	fault.KindUnauthenticated: connect.CodeUnauthenticated,
	fault.KindForbidden:       connect.CodePermissionDenied,
	fault.KindNotFound:        connect.CodeNotFound,
	fault.KindConflict:        connect.CodeFailedPrecondition,
	fault.KindRateLimited:     connect.CodeResourceExhausted,
	fault.KindPaymentRequired: connect.CodeFailedPrecondition,
	fault.KindUnprocessable:   connect.CodeFailedPrecondition,
	fault.KindTooLarge:        connect.CodeResourceExhausted,
	fault.KindUnavailable:     connect.CodeUnavailable,
	fault.KindInternal:        connect.CodeInternal,
}

// ErrorCodeHeader carries the stable fault code of a refused call.
const ErrorCodeHeader = "Gpuaas-Error-Code"

// CodeOf returns the Connect code for a fault kind (Internal for a kind
// the table does not know, so a new kind fails safe).
func CodeOf(k fault.Kind) connect.Code {
	if c, ok := kindCode[k]; ok {
		return c
	}
	return connect.CodeInternal
}

// toConnect turns any error into a Connect error with the fault's stable
// code. Internal errors carry a generic message: the cause is logged.
func toConnect(err error) *connect.Error {
	fe := fault.From(err)
	msg := fe.Message
	code := fe.Code
	if fe.Kind == fault.KindInternal || code == "" {
		msg, code = "internal error", fault.CodeInternal
	}
	ce := connect.NewError(CodeOf(fe.Kind), errorMessage(msg))
	ce.Meta().Set(ErrorCodeHeader, string(code))
	return ce
}

type errorMessage string

func (m errorMessage) Error() string { return string(m) }

// FaultCode returns the stable fault code a Connect error carries, or "".
func FaultCode(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Meta().Get(ErrorCodeHeader)
	}
	return ""
}
