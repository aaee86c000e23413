package client

import (
	"errors"
	"testing"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

func TestPutGetDelete(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	ctx := t.Context()

	put, err := c.Put(ctx, "a", []byte("1"))
	if err != nil || !put.GetSucceeded() || put.GetKv().GetVersion() != 1 {
		t.Fatalf("Put = %v, %v", put, err)
	}
	get, err := c.Get(ctx, "a")
	if err != nil || !get.GetFound() || string(get.GetKv().GetValue()) != "1" {
		t.Fatalf("Get = %v, %v", get, err)
	}
	missing, err := c.Get(ctx, "nope")
	if err != nil || missing.GetFound() {
		t.Fatalf("Get of an absent key = %v, %v; want Found false and no error", missing, err)
	}
	del, err := c.Delete(ctx, "a")
	if err != nil || !del.GetDeleted() || !del.GetSucceeded() {
		t.Fatalf("Delete = %v, %v", del, err)
	}
	if _, ok := fc.Value("a"); ok {
		t.Fatal("key still stored after Delete")
	}
}

func TestConditionalPutAndDelete(t *testing.T) {
	fc := clienttest.Start(t, 1)
	c := newTestClient(t, fc.Addrs())
	ctx := t.Context()

	first, err := c.Put(ctx, "k", []byte("v1"), WithExpectedRevision(0))
	if err != nil || !first.GetSucceeded() {
		t.Fatalf("create-only Put = %v, %v", first, err)
	}
	again, err := c.Put(ctx, "k", []byte("v2"), WithExpectedRevision(0))
	if err != nil {
		t.Fatalf("second create-only Put: %v", err)
	}
	if again.GetSucceeded() || again.GetKv().GetModRevision() != first.GetKv().GetModRevision() {
		t.Fatalf("second create-only Put = %v: want Succeeded false and the current key", again)
	}
	rev := first.GetKv().GetModRevision()
	if resp, err := c.Delete(ctx, "k", WithExpectedRevision(rev+100)); err != nil || resp.GetSucceeded() {
		t.Fatalf("mismatched Delete = %v, %v", resp, err)
	}
	if resp, err := c.Delete(ctx, "k", WithExpectedRevision(rev)); err != nil || !resp.GetDeleted() {
		t.Fatalf("matching Delete = %v, %v", resp, err)
	}
	req := fc.Calls("Put")[1].Request.(*coordv1.PutRequest)
	if req.ExpectedRevision == nil || *req.ExpectedRevision != 0 {
		t.Fatalf("expected_revision sent as %v, want explicit 0", req.ExpectedRevision)
	}
}

func TestPutTTL(t *testing.T) {
	fc := clienttest.Start(t, 1)
	c := newTestClient(t, fc.Addrs())
	if _, err := c.Put(t.Context(), "k", nil, WithTTL(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), "k2", nil, WithTTL(0)); err != nil {
		t.Fatal(err)
	}
	puts := fc.Calls("Put")
	if ttl := puts[0].Request.(*coordv1.PutRequest).GetTtl().AsDuration(); ttl != 30*time.Second {
		t.Fatalf("ttl sent as %v, want 30s", ttl)
	}
	if ttl := puts[1].Request.(*coordv1.PutRequest).GetTtl(); ttl != nil {
		t.Fatalf("WithTTL(0) sent ttl %v, want none", ttl)
	}
}

func TestKVRejectsBadArgumentsLocally(t *testing.T) {
	fc := clienttest.Start(t, 1)
	c := newTestClient(t, fc.Addrs())
	ctx := t.Context()
	errs := []error{}
	_, err := c.Put(ctx, "k", nil, WithTTL(-time.Second))
	errs = append(errs, err)
	_, err = c.Put(ctx, "", nil)
	errs = append(errs, err)
	_, err = c.Get(ctx, "")
	errs = append(errs, err)
	_, err = c.Delete(ctx, "")
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("case %d: %v, want ErrInvalidArgument", i, err)
		}
	}
	if n := len(fc.Calls("Put")) + len(fc.Calls("Get")) + len(fc.Calls("Delete")); n != 0 {
		t.Fatalf("%d requests sent for invalid arguments", n)
	}
}
