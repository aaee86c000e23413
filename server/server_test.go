package server

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/metadata"

	coordv1 "coord/api/coord/v1"
)

func TestRequestID(t *testing.T) {
	in := func(kv ...string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
	}
	got, err := requestID(in(coordv1.HeaderClientID, "42", coordv1.HeaderSeq, "7", coordv1.HeaderAcked, "5"))
	if err != nil || got != (reqID{client: 42, seq: 7, acked: 5}) {
		t.Fatalf("requestID = %+v, %v; want client 42, seq 7, acked 5", got, err)
	}
	if got, err := requestID(context.Background()); err != nil || got != (reqID{}) {
		t.Fatalf("without metadata: %+v, %v; want none", got, err)
	}
	var inv *invalidError
	for _, ctx := range []context.Context{
		in(coordv1.HeaderClientID, "42"),
		in(coordv1.HeaderSeq, "7"),
		in(coordv1.HeaderClientID, "0", coordv1.HeaderSeq, "7"),
		in(coordv1.HeaderClientID, "x", coordv1.HeaderSeq, "7"),
		in(coordv1.HeaderClientID, "42", coordv1.HeaderSeq, "-1"),
	} {
		md, _ := metadata.FromIncomingContext(ctx)
		if _, err := requestID(ctx); !errors.As(err, &inv) {
			t.Errorf("metadata %v: error %v, want invalid argument", md, err)
		}
	}
}
