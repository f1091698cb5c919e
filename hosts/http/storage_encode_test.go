package httphost

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// TestListingEncodingMatches: the hand-written listing encoder says what
// encoding/json says of api.StorageListing.
func TestListingEncodingMatches(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 5*3600+1800))
	page := storagesvc.Page{Dir: storage.MustParsePath("/data/ü"), Next: "Zm9v", Entries: []storage.Entry{
		{Path: storage.MustParsePath(`/data/ü/a "quoted" name.txt`), Kind: storage.File, Size: 42, ETag: "abc-2",
			ContentType: "text/plain; charset=utf-8", CreatedBy: "u1", CreatedAt: at, UpdatedAt: at.Add(time.Second)},
		{Path: storage.MustParsePath("/data/ü/<dir>&"), Kind: storage.Dir, CreatedAt: at, UpdatedAt: at},
		// The same instant in another zone reads otherwise.
		{Path: storage.MustParsePath("/data/ü/z"), Kind: storage.File, CreatedAt: at, UpdatedAt: at.UTC()},
	}}
	got := appendListing(nil, page)
	want := api.StorageListing{Path: page.Dir.String(), NextCursor: &page.Next}
	for _, e := range page.Entries {
		want.Entries = append(want.Entries, storageEntryView(e))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(want); err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	_ = json.Unmarshal(buf.Bytes(), &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("hand-written\n%s\nencoding/json\n%s", got, buf.Bytes())
	}
	for _, s := range []string{"plain", `q"b\s`, "tab\tnl\ncr\r\x01", "ünï\u2028\u2029", "bad\xffutf8", "<>&"} {
		var want bytes.Buffer
		e := json.NewEncoder(&want)
		e.SetEscapeHTML(false)
		_ = e.Encode(s)
		if g := string(appendJSONString(nil, s)) + "\n"; g != want.String() {
			t.Errorf("%q: %s, encoding/json %s", s, g, want.String())
		}
	}
}
