package terminal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// The session protocol between the terminal gateway and a node
// (doc/terminal.md#sessions). A browser terminal is not a plain SSH shell: it
// is a session the node keeps when the browser goes away, for a reconnect
// window, and resumes with its recent output. The gateway reaches it through
// the SSH subsystem SessionSubsystem on the allocation's account; both sides
// then exchange frames:
//
//	frame = type (1 byte) | length (4 bytes, big endian) | payload (length bytes)
//
// gateway → node: FrameHello first (JSON Hello), then FrameData (input) and
// FrameResize (JSON Size). node → gateway: FrameAttached (JSON Attached) or
// FrameError (JSON WireError, then the channel closes), then FrameData
// (output, starting with the replay of the recent screen when resumed) and
// finally FrameExit (JSON Exit) when the shell ended. Closing the channel
// without FrameExit detaches the session; it is not an end.

// SessionSubsystem is the SSH subsystem name of the session protocol (a
// private name in the form RFC 4250 asks for).
const SessionSubsystem = "gpuaas-terminal@gpuaas"

// Frame types.
const (
	FrameHello    byte = 'H'
	FrameData     byte = 'D'
	FrameResize   byte = 'R'
	FrameAttached byte = 'A'
	FrameError    byte = 'E'
	FrameExit     byte = 'X'
)

// MaxFramePayload bounds one frame; larger frames are a protocol error.
const MaxFramePayload = 64 << 10

// Session modes of a Hello.
const (
	// ModeNew starts a new session under the given id.
	ModeNew = "new"
	// ModeResume attaches to the existing session with the given id; a
	// session that ended (or never existed) is CodeSessionEnded.
	ModeResume = "resume"
)

// Codes a node refuses a Hello with (WireError.Code).
const (
	// CodeSessionEnded: the session to resume is gone (its shell exited or
	// its reconnect window passed).
	CodeSessionEnded = "terminal_session_ended"
	// CodeSessionLimit: the account holds the most sessions allowed.
	CodeSessionLimit = "terminal_session_limit"
	// CodeSessionExists: a new session was asked for under an id in use.
	CodeSessionExists = "terminal_session_exists"
	// CodeSessionTakenOver: another client attached to this session (sent
	// to the client that loses it).
	CodeSessionTakenOver = "terminal_session_taken_over"
	// CodeSessionBadHello: the hello frame was malformed.
	CodeSessionBadHello = "terminal_session_bad_hello"
	// CodeSessionUnavailable: the node could not start a shell.
	CodeSessionUnavailable = "terminal_session_unavailable"
)

// Hello opens or resumes a session.
type Hello struct {
	SessionID string `json:"session_id"`
	Mode      string `json:"mode"`
	Cols      int    `json:"cols"`
	Rows      int    `json:"rows"`
	Term      string `json:"term,omitempty"`
}

// sessionIDRE: ids are chosen by the platform (UUIDs); the node accepts only
// short plain tokens so an id can never be a path or a flag.
var sessionIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)

// ValidSessionID reports whether id has the shape of a session id.
func ValidSessionID(id string) bool { return sessionIDRE.MatchString(id) }

var termRE = regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`)

// Validate checks a hello from the wire.
func (h Hello) Validate() error {
	switch {
	case !ValidSessionID(h.SessionID):
		return errors.New("session_id must be 8-64 characters [A-Za-z0-9-]")
	case h.Mode != ModeNew && h.Mode != ModeResume:
		return errors.New("mode must be new or resume")
	case h.Cols < 1 || h.Cols > MaxCols || h.Rows < 1 || h.Rows > MaxRows:
		return fmt.Errorf("size must be 1..%d cols and 1..%d rows", MaxCols, MaxRows)
	case h.Term != "" && !termRE.MatchString(h.Term):
		return errors.New("term is not a terminal type name")
	}
	return nil
}

// Size is a resize.
type Size struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

// Valid reports whether the size is within the terminal limits.
func (s Size) Valid() bool {
	return s.Cols >= 1 && s.Cols <= MaxCols && s.Rows >= 1 && s.Rows <= MaxRows
}

// Attached answers a hello that succeeded.
type Attached struct {
	SessionID string `json:"session_id"`
	// Resumed: an existing session was attached (its recent output follows).
	Resumed bool `json:"resumed"`
}

// WireError answers a hello that failed, or tells a client it lost the
// session.
type WireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *WireError) Error() string { return e.Code + ": " + e.Message }

// Exit tells that the session's shell ended with Status.
type Exit struct {
	Status int `json:"status"`
}

// WriteFrame writes one frame. Callers serialise writers.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("terminal: frame of %d bytes exceeds %d", len(payload), MaxFramePayload)
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := w.Write(payload)
	return err
}

// WriteJSONFrame writes v as the JSON payload of one frame.
func WriteJSONFrame(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, typ, b)
}

// ErrFrameTooLarge is a frame whose declared length exceeds MaxFramePayload.
var ErrFrameTooLarge = errors.New("terminal: frame too large")

// FrameReader reads frames, reusing one buffer: a payload is valid until
// the next Next.
type FrameReader struct {
	r   io.Reader
	buf []byte
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: r} }

// Next reads the next frame. io.EOF means the peer closed cleanly between
// frames; a close inside a frame is io.ErrUnexpectedEOF.
func (f *FrameReader) Next() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFramePayload {
		return 0, nil, ErrFrameTooLarge
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n)
	}
	b := f.buf[:n]
	if _, err := io.ReadFull(f.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], b, nil
}
