// Command storage-path walks project storage against a running platform
// (`gpuaas dev`) as a signed-in user would, and exits non-zero on the first
// thing that does not work:
//
//  1. upload small files and a 1 GiB file (streamed from a generator, never
//     held: its SHA-256 is computed on the way), list them;
//
//  2. download the 1 GiB file whole and compare checksums, and byte ranges
//     (206, Content-Range) against the generator;
//
//  3. mkdir, rename a folder with files in it, delete it recursively;
//
//  4. round-trip a file through presigned URLs with a plain HTTP client (no
//     platform token), as curl would;
//
//  5. ask for more than the quota: 400 storage_quota_exceeded with used and
//     limit;
//
//  6. start an allocation with storage_sync: the project folder shows up in
//     the user's home over SSH; a file written there is back in project
//     storage after release.
//
//     go run ./scripts/storage-path -api http://127.0.0.1:8080 -user alice
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/testkit/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storage-path: FAIL:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "storage-path: OK")
}

// block is the generator's unit: each 64 KiB block is ChaCha8 output
// seeded by its index, so any range can be regenerated to compare.
const block = 64 << 10

type generator struct{ size, off int64 }

func blockBytes(i int64) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i))
	b := make([]byte, block)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func (g *generator) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.off < g.size {
		b := blockBytes(g.off / block)
		k := copy(p[n:], b[g.off%block:min(int64(block), g.size-g.off/block*block)])
		n += k
		g.off += int64(k)
	}
	return n, nil
}

// rangeOf regenerates [off, off+n).
func rangeOf(size, off, n int64) []byte {
	g := &generator{size: size, off: off}
	b := make([]byte, n)
	_, _ = io.ReadFull(g, b)
	return b
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("storage-path", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8080", "base URL of the platform API")
	user := fs.String("user", "alice", "dev identity provider user")
	password := fs.String("password", "", "password (default: the user name)")
	bigSize := fs.Int64("big", 1<<30, "size of the large upload in bytes")
	skipNode := fs.Bool("skip-node", false, "skip the storage_sync allocation")
	timeout := fs.Duration("timeout", 10*time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		*password = *user
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	step := func(format string, a ...any) { fmt.Fprintf(out, "• "+format+"\n", a...) }

	c := e2e.New(*api)
	if err := c.Login(ctx, *user, *password); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	step("signed in (project %s)", c.Project)
	root := fmt.Sprintf("/storage-path-%d", time.Now().UnixNano())
	defer func() {
		_ = c.Call(context.Background(), "DELETE", "/api/v1/storage/delete?"+url.Values{"path": {root}, "recursive": {"true"}}.Encode(), nil, nil)
	}()

	// 1. Uploads.
	for name, body := range map[string]string{"a.txt": "alpha\n", "docs/b.md": "# bravo\n", "docs/c.json": `{"c":3}`} {
		if _, err := c.Upload(ctx, root+"/small/"+name, strings.NewReader(body), int64(len(body)), "text/plain"); err != nil {
			return fmt.Errorf("upload %s: %w", name, err)
		}
	}
	big := root + "/big/one-gib.bin"
	sum := sha256.New()
	start := time.Now()
	e, err := c.Upload(ctx, big, io.TeeReader(&generator{size: *bigSize}, sum), *bigSize, "application/octet-stream")
	if err != nil {
		return fmt.Errorf("upload %d bytes: %w", *bigSize, err)
	}
	upSum := hex.EncodeToString(sum.Sum(nil))
	secs := time.Since(start).Seconds()
	step("uploaded %d bytes in %.1f s (%.0f MB/s), etag %s", e.SizeBytes, secs, float64(*bigSize)/secs/1e6, e.ETag)
	if e.SizeBytes != *bigSize {
		return fmt.Errorf("uploaded size %d", e.SizeBytes)
	}
	entries, err := c.List(ctx, root+"/small")
	if err != nil {
		return err
	}
	if names := entryNames(entries); names != "a.txt docs/" {
		return fmt.Errorf("listing of %s/small: %s", root, names)
	}
	step("listed %s/small: %s", root, entryNames(entries))

	// 2. Downloads.
	resp, err := c.Download(ctx, big, "")
	if err != nil {
		return err
	}
	down := sha256.New()
	start = time.Now()
	n, err := io.Copy(down, resp.Body)
	resp.Body.Close()
	if err != nil || n != *bigSize {
		return fmt.Errorf("download: %d bytes, %v", n, err)
	}
	if got := hex.EncodeToString(down.Sum(nil)); got != upSum {
		return fmt.Errorf("download checksum %s, upload %s", got, upSum)
	}
	secs = time.Since(start).Seconds()
	step("downloaded it in %.1f s (%.0f MB/s), sha256 %s… matches", secs, float64(n)/secs/1e6, upSum[:16])
	for _, r := range [][2]int64{{0, 100}, {*bigSize/2 - 7, 4096}, {*bigSize - 10, 10}} {
		resp, err := c.Download(ctx, big, fmt.Sprintf("bytes=%d-%d", r[0], r[0]+r[1]-1))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantCR := fmt.Sprintf("bytes %d-%d/%d", r[0], r[0]+r[1]-1, *bigSize)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR ||
			!bytes.Equal(b, rangeOf(*bigSize, r[0], r[1])) {
			return fmt.Errorf("range %v: %d %q, %d bytes", r, resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
		}
	}
	step("three byte ranges (start, middle, end) match the generator")

	// 3. mkdir, rename a folder, delete.
	if err := c.Call(ctx, "POST", "/api/v1/storage/mkdir", map[string]string{"path": root + "/made/here"}, nil); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	if err := c.Call(ctx, "POST", "/api/v1/storage/mkdir", map[string]string{"path": root + "/made/here"}, nil); !isCode(err, "storage_conflict") {
		return fmt.Errorf("mkdir of an existing folder: %v", err)
	}
	var moved struct{ Entries int }
	if err := c.Call(ctx, "POST", "/api/v1/storage/rename", map[string]string{"from": root + "/small", "to": root + "/renamed/small"}, &moved); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if entries, err = c.List(ctx, root+"/renamed/small/docs"); err != nil || entryNames(entries) != "b.md c.json" {
		return fmt.Errorf("after rename: %s %v", entryNames(entries), err)
	}
	if err := c.Call(ctx, "GET", "/api/v1/storage/stat?path="+url.QueryEscape(root+"/small"), nil, nil); !isCode(err, "storage_object_not_found") {
		return fmt.Errorf("the old folder after rename: %v", err)
	}
	step("mkdir %s/made/here, renamed a folder of %d entries", root, moved.Entries)
	var del struct{ Files int }
	if err := c.Call(ctx, "DELETE", "/api/v1/storage/delete?"+url.Values{"path": {root + "/renamed"}, "recursive": {"true"}}.Encode(), nil, &del); err != nil || del.Files != 3 {
		return fmt.Errorf("delete: %+v %v", del, err)
	}
	step("deleted %s/renamed (%d files)", root, del.Files)

	// 4. Presigned round trip with a plain client.
	payload := []byte("through presigned URLs, no platform token\n")
	var pre e2e.Presigned
	if err := c.Call(ctx, "POST", "/api/v1/storage/presign", map[string]any{"path": root + "/presigned.txt", "method": "PUT",
		"size_bytes": len(payload), "content_type": "text/plain"}, &pre); err != nil {
		return fmt.Errorf("presign PUT: %w", err)
	}
	if r, err := pre.Send(ctx, bytes.NewReader(payload), int64(len(payload))); err != nil || r.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT to the presigned URL: %v %v", status(r), err)
	}
	if err := c.Call(ctx, "POST", "/api/v1/storage/presign/complete", map[string]string{"upload_id": pre.UploadID}, nil); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	var get e2e.Presigned
	if err := c.Call(ctx, "POST", "/api/v1/storage/presign", map[string]any{"path": root + "/presigned.txt", "method": "GET"}, &get); err != nil {
		return fmt.Errorf("presign GET: %w", err)
	}
	r, err := get.Send(ctx, nil, 0)
	if err != nil {
		return err
	}
	got, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !bytes.Equal(got, payload) {
		return fmt.Errorf("GET from the presigned URL: %d %q", r.StatusCode, got)
	}
	step("round-tripped a file through presigned PUT and GET with a plain HTTP client")

	// 5. Quota.
	var usage struct {
		UsedBytes  int64 `json:"used_bytes"`
		QuotaBytes int64 `json:"quota_bytes"`
		FreeBytes  int64 `json:"free_bytes"`
	}
	if err := c.Call(ctx, "GET", "/api/v1/storage/usage", nil, &usage); err != nil {
		return err
	}
	err = c.Call(ctx, "POST", "/api/v1/storage/presign", map[string]any{"path": root + "/too-big.bin", "method": "PUT",
		"size_bytes": usage.FreeBytes + 1}, nil)
	var se *e2e.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Code != "storage_quota_exceeded" ||
		se.Details["limit_bytes"] == nil || se.Details["used_bytes"] == nil {
		return fmt.Errorf("an upload over the quota: %v", err)
	}
	step("an upload of %d bytes over the %d-byte quota is refused: 400 storage_quota_exceeded", usage.FreeBytes+1, usage.QuotaBytes)

	if *skipNode {
		return nil
	}
	return nodeSync(ctx, c, root, step)
}

// nodeSync: an allocation with storage_sync sees the folder over SSH, and
// what is written there is back in storage after release.
func nodeSync(ctx context.Context, c *e2e.Client, root string, step func(string, ...any)) error {
	hello := "hello from project storage\n"
	if _, err := c.Upload(ctx, root+"/sync/hello.txt", strings.NewReader(hello), int64(len(hello)), "text/plain"); err != nil {
		return err
	}
	bal, err := c.Balance(ctx)
	if err != nil {
		return err
	}
	if bal.BalanceMinor <= 0 {
		if err := c.TopUp(ctx, 5000, "usd"); err != nil {
			return err
		}
	}
	keyID, signer, err := c.AddSSHKey(ctx, "storage-path")
	if err != nil {
		return err
	}
	defer func() { _ = c.Call(context.Background(), "DELETE", "/api/v1/ssh-keys/"+keyID, nil, nil) }()
	sku, _, err := c.PickSKU(ctx, "")
	if err != nil {
		return err
	}
	var alloc e2e.Allocation
	if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": sku, "ssh_key_ids": []string{keyID},
		"storage_sync": map[string]string{"path": root + "/sync"}}, &alloc); err != nil {
		return fmt.Errorf("create allocation: %w", err)
	}
	released := false
	defer func() {
		if !released {
			_ = c.Call(context.Background(), "POST", "/api/v1/allocations/"+alloc.ID+"/release", nil, nil)
		}
	}()
	if alloc, err = c.WaitState(ctx, alloc.ID, "active"); err != nil {
		return err
	}
	addr := net.JoinHostPort(alloc.Access.Host, fmt.Sprint(alloc.Access.Port))
	// The pull runs once the allocation is active: the folder fills in.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := e2e.SSHRun(addr, alloc.Access.User, signer, "cat ~/sync/hello.txt")
		if err == nil && got == hello {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("~/sync/hello.txt never appeared on the node: %q %v", got, err)
		}
		time.Sleep(500 * time.Millisecond) // polling the node for the pull, not synchronising
	}
	step("allocation %s: ~/sync/hello.txt is on the node over SSH", alloc.ID)
	if _, err := e2e.SSHRun(addr, alloc.Access.User, signer, "echo written-on-the-node > ~/sync/from-node.txt"); err != nil {
		return err
	}
	if err := c.Call(ctx, "POST", "/api/v1/allocations/"+alloc.ID+"/release", nil, nil); err != nil {
		return err
	}
	if _, err := c.WaitState(ctx, alloc.ID, "released"); err != nil {
		return err
	}
	released = true
	resp, err := c.Download(ctx, root+"/sync/from-node.txt", "")
	if err != nil {
		return fmt.Errorf("the file written on the node is not in storage after release: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "written-on-the-node\n" {
		return fmt.Errorf("from-node.txt holds %q", b)
	}
	step("released: ~/sync/from-node.txt is back in project storage")
	return nil
}

func entryNames(es []e2e.StorageEntry) string {
	var names []string
	for _, e := range es {
		n := e.Name
		if e.Kind == "dir" {
			n += "/"
		}
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

func isCode(err error, code string) bool {
	var se *e2e.StatusError
	return errors.As(err, &se) && se.Code == code
}

func status(r *http.Response) any {
	if r == nil {
		return nil
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 512))
	return fmt.Sprintf("%d %s", r.StatusCode, b)
}
