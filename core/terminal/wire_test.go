package terminal_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/terminal"
)

func TestFramesRoundTrip(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	big := bytes.Repeat([]byte("x"), terminal.MaxFramePayload)
	for _, f := range []struct {
		typ byte
		p   []byte
	}{{terminal.FrameData, []byte("ls -l\n")}, {terminal.FrameData, nil}, {terminal.FrameResize, []byte(`{"cols":80,"rows":24}`)},
		{terminal.FrameData, big}} {
		if err := terminal.WriteFrame(&b, f.typ, f.p); err != nil {
			t.Fatal(err)
		}
	}
	if err := terminal.WriteFrame(&b, terminal.FrameData, append(big, 'y')); err == nil {
		t.Fatal("a frame over the limit was written")
	}
	r := terminal.NewFrameReader(&b)
	for i, want := range []string{"ls -l\n", "", `{"cols":80,"rows":24}`, string(big)} {
		_, p, err := r.Next()
		if err != nil || string(p) != want {
			t.Fatalf("frame %d: %d bytes, %v", i, len(p), err)
		}
	}
	if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v; want EOF", err)
	}
	// A declared length over the limit is refused before anything is read
	// into memory; a frame cut short is an unexpected EOF.
	if _, _, err := terminal.NewFrameReader(bytes.NewReader([]byte{'D', 0xff, 0xff, 0xff, 0xff})).Next(); !errors.Is(err, terminal.ErrFrameTooLarge) {
		t.Fatalf("huge length: %v", err)
	}
	if _, _, err := terminal.NewFrameReader(bytes.NewReader([]byte{'D', 0, 0, 0, 9, 'a'})).Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: %v", err)
	}
}

func TestHelloValidate(t *testing.T) {
	t.Parallel()
	ok := terminal.Hello{SessionID: "0192e5a4-7b1c-7000-8000-000000000001", Mode: terminal.ModeNew, Cols: 80, Rows: 24, Term: "xterm-256color"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*terminal.Hello){
		"short id":       func(h *terminal.Hello) { h.SessionID = "abc" },
		"path id":        func(h *terminal.Hello) { h.SessionID = "../../../etc" },
		"long id":        func(h *terminal.Hello) { h.SessionID = strings.Repeat("a", 65) },
		"mode":           func(h *terminal.Hello) { h.Mode = "attach" },
		"zero cols":      func(h *terminal.Hello) { h.Cols = 0 },
		"too many rows":  func(h *terminal.Hello) { h.Rows = terminal.MaxRows + 1 },
		"term with a NL": func(h *terminal.Hello) { h.Term = "xterm\nX=1" },
	} {
		h := ok
		mut(&h)
		if h.Validate() == nil {
			t.Errorf("%s: accepted %+v", name, h)
		}
	}
}
