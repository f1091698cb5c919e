package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStartServesAndReportsTakenPorts(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })}
	ln, done, err := Start(context.Background(), "test server", "127.0.0.1:0", srv, log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "hi" {
		t.Fatalf("got %q", b)
	}
	// The same port again fails at start, naming the server and the address.
	if _, _, err := Start(context.Background(), "second server", ln.Addr().String(), &http.Server{}, log); err == nil ||
		!strings.Contains(err.Error(), "second server: listen on "+ln.Addr().String()) {
		t.Fatalf("a taken port: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("done did not close after Shutdown")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still listening after Shutdown")
	}
}
