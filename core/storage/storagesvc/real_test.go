package storagesvc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/s3"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestConcurrentUploadsNearTheQuota: on real Postgres and versitygw, 32
// uploads of 100 KiB race for the 900 KiB a 1000 KiB quota leaves: exactly
// nine land, the rest are storage_quota_exceeded, and neither the index nor
// the bucket ever holds more than the quota.
func TestConcurrentUploadsNearTheQuota(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := services.S3(t)
	r := newRig(t, gw.Store, nil, storagesvc.Config{})
	const kib = 1024
	r.upload(t, "/seed.bin", bytes.Repeat([]byte{1}, 100*kib))
	r.setQuota(t, 1000*kib)
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			body := bytes.Repeat([]byte{byte(i)}, 100*kib)
			_, err := r.svc.Upload(ctx, r.m.Principal, r.m.ProjectID, fmt.Sprintf("/race/f%02d", i), bytes.NewReader(body),
				int64(len(body)), "")
			results <- err
		}(i)
	}
	close(start)
	wg.Wait()
	close(results)
	ok, refused := 0, 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case codeOf(err) == storage.CodeQuotaExceeded:
			refused++
		default:
			t.Errorf("upload: %v", err)
		}
	}
	if ok != 9 || refused != 23 {
		t.Fatalf("%d landed, %d refused; want 9 and 23", ok, refused)
	}
	us, err := r.svc.Usage(ctx, r.m.Principal, r.m.ProjectID)
	if err != nil || us.UsedBytes != 1000*kib || us.ReservedBytes != 0 || us.Files != 10 {
		t.Fatalf("usage %+v %v", us, err)
	}
	prefix, _ := storage.Scope{TenantID: r.m.Principal.TenantID, ProjectID: r.m.ProjectID}.Prefix()
	objs, _, err := gw.Store.List(ctx, prefix, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, o := range objs {
		stored += o.Size
	}
	if len(objs) != 10 || stored > 1000*kib {
		t.Fatalf("bucket holds %d objects, %d bytes", len(objs), stored)
	}
}

// The crash child: env GPUAAS_STORAGE_CRASH_CHILD=1 makes the test binary
// upload one file and stop dead between the object write and the index
// write, waiting for its parent's SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("GPUAAS_STORAGE_CRASH_CHILD") == "1" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

type freezeAfterPut struct {
	*s3.Store
}

func (f freezeAfterPut) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) (ports.ObjectInfo, error) {
	_, err := f.Store.Put(ctx, key, r, size, ct)
	fmt.Printf("written %v\n", err)
	select {} // the parent kills us here: after the object, before the index
}

func crashChild() {
	ctx := context.Background()
	env := os.Getenv
	db, err := postgres.Open(ctx, postgres.Config{URL: env("CRASH_DB")})
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	st, err := s3.New(ctx, s3.Config{Bucket: env("CRASH_BUCKET"), Endpoint: env("CRASH_ENDPOINT"),
		Credentials: s3.StaticCredentials(env("CRASH_ACCESS"), env("CRASH_SECRET"))})
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	objs := freezeAfterPut{st}
	policies, _ := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	outbox, _ := postgres.NewOutbox(db, postgres.OutboxConfig{})
	index := postgres.NewStorageStore(db)
	svc, err := storagesvc.New(storagesvc.Config{}, storagesvc.Deps{Tx: db, Index: index, Reservations: index, Objects: objs,
		Presigner: st, Multipart: st, Projects: postgres.NewProjectStore(db), Policies: policies,
		Audit: postgres.NewAuditLog(db), Outbox: outbox, Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	p := identity.Principal{User: identity.User{ID: env("CRASH_USER")}, TenantID: env("CRASH_TENANT")}
	size, _ := strconv.Atoi(env("CRASH_SIZE"))
	body := bytes.Repeat([]byte("z"), size)
	_, err = svc.Upload(ctx, p, env("CRASH_PROJECT"), env("CRASH_PATH"), bytes.NewReader(body), int64(size), "")
	fmt.Println("child: upload returned", err)
	os.Exit(3)
}

// TestCrashBetweenObjectAndIndexIsRepaired kills (SIGKILL) a process that
// wrote an upload's object and not yet its index row — once for a new file,
// once for an overwrite — and checks that the reconciler makes the index
// and the bucket agree: the new file's orphan object goes once its
// reservation has expired, the overwritten file's row takes the object's
// size and ETag.
func TestCrashBetweenObjectAndIndexIsRepaired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := services.S3(t)
	url := services.FreshDatabaseURL(t)
	db, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	clock := fakes.NewClock(time.Now())
	r := newRigOn(t, db, gw.Store, clock, storagesvc.Config{})
	r.upload(t, "/over.bin", []byte("before"))

	crash := func(path string, size int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GPUAAS_STORAGE_CRASH_CHILD=1", "CRASH_DB="+url, "CRASH_BUCKET="+gw.Bucket,
			"CRASH_ENDPOINT="+gw.Gateway.Endpoint(), "CRASH_ACCESS="+gw.Gateway.AccessKey(), "CRASH_SECRET="+gw.Gateway.SecretKey(),
			"CRASH_USER="+r.m.Principal.User.ID, "CRASH_TENANT="+r.m.Principal.TenantID, "CRASH_PROJECT="+r.m.ProjectID,
			"CRASH_PATH="+path, "CRASH_SIZE="+strconv.Itoa(size))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if !strings.HasPrefix(line, "written <nil>") {
			t.Fatalf("child said %q", line)
		}
	}
	crash("/new.bin", 3000)
	crash("/over.bin", 4000)

	// What the crash left: objects the index does not know or misdescribes.
	if _, err := gw.Store.Head(ctx, r.key(t, "/new.bin")); err != nil {
		t.Fatalf("the new object is not there: %v", err)
	}
	if _, err := r.svc.Stat(ctx, r.m.Principal, r.m.ProjectID, "/new.bin"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("the new file is indexed: %v", err)
	}
	if e, _ := r.svc.Stat(ctx, r.m.Principal, r.m.ProjectID, "/over.bin"); e.Size != 6 {
		t.Fatalf("the overwritten row already changed: %+v", e)
	}
	us, _ := r.svc.Usage(ctx, r.m.Principal, r.m.ProjectID)
	if us.ReservedBytes != 7000 {
		t.Fatalf("the dead uploads' reservations: %+v", us)
	}

	rep, err := r.svc.Reconcile(ctx, storagesvc.ReconcileOptions{Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RowsRepaired != 1 || rep.OrphansDeleted != 0 {
		t.Fatalf("first run (reservations live) %+v", rep)
	}
	if e, _ := r.svc.Stat(ctx, r.m.Principal, r.m.ProjectID, "/over.bin"); e.Size != 4000 {
		t.Fatalf("the overwritten row was not repaired: %+v", e)
	}
	if got := r.read(t, "/over.bin", 0, -1); len(got) != 4000 {
		t.Fatalf("download after repair: %d bytes", len(got))
	}
	clock.Advance(25 * time.Hour)
	rep, err = r.svc.Reconcile(ctx, storagesvc.ReconcileOptions{Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ReservationsExpired != 2 || rep.OrphansDeleted != 1 {
		t.Fatalf("second run %+v", rep)
	}
	if _, err := gw.Store.Head(ctx, r.key(t, "/new.bin")); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("the orphan is still there: %v", err)
	}
	us, _ = r.svc.Usage(ctx, r.m.Principal, r.m.ProjectID)
	if us.ReservedBytes != 0 || us.UsedBytes != 4000 || us.Files != 1 {
		t.Fatalf("usage after repair %+v", us)
	}
	rep, err = r.svc.Reconcile(ctx, storagesvc.ReconcileOptions{Grace: time.Minute})
	if err != nil || rep.OrphansDeleted+rep.RowsDeleted+rep.RowsRepaired+rep.ReservationsExpired != 0 {
		t.Fatalf("a third run found more: %+v %v", rep, err)
	}
}
