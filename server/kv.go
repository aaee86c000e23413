package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/kv"
)

type kvService struct {
	coordv1.UnimplementedKVServiceServer
	s *Server
}

func (k *kvService) Put(ctx context.Context, req *coordv1.PutRequest) (*coordv1.PutResponse, error) {
	ttl, err := duration("ttl", req.Ttl, kv.MinTTL, kv.MaxTTL)
	if err != nil {
		return nil, err
	}
	cmd := &cmdpb.KVPut{Key: req.Key, Value: req.Value, Ttl: int64(ttl)}
	if req.ExpectedRevision != nil {
		cmd.HasExpected, cmd.ExpectedRevision = true, *req.ExpectedRevision
	}
	if err := kv.ValidatePut(cmd); err != nil {
		return nil, invalid("%v", err)
	}
	res, err := k.s.apply(ctx, sm.MachineKV, kv.OpPut, cmd, req.Fences...)
	if err != nil {
		return nil, err
	}
	var out cmdpb.KVPutResult
	if err := proto.Unmarshal(res.Result.Body, &out); err != nil {
		return nil, err
	}
	resp := &coordv1.PutResponse{Succeeded: out.Succeeded, Revision: res.Index}
	if out.Succeeded && out.Record != nil {
		// A retried request is answered with the stored result of the entry
		// that applied it; that entry's index is the write's revision.
		resp.Revision = out.Record.ModRevision
	}
	if out.Found {
		resp.Kv = keyValue(req.Key, out.Record)
	}
	return resp, nil
}

func (k *kvService) Get(ctx context.Context, req *coordv1.GetRequest) (*coordv1.GetResponse, error) {
	if err := kv.ValidateKey(req.Key); err != nil {
		return nil, invalid("key: %v", err)
	}
	linear := req.Consistency != coordv1.ReadConsistency_READ_CONSISTENCY_STALE
	resp := &coordv1.GetResponse{}
	err := k.s.node.Read(ctx, linear, sm.MachineKV, func(env sm.Env, tx sm.Tx) error {
		rec, err := kv.Load(env, tx, req.Key)
		if err != nil {
			return err
		}
		resp.AppliedIndex = env.Index
		if rec != nil {
			resp.Found, resp.Kv = true, keyValue(req.Key, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (k *kvService) Delete(ctx context.Context, req *coordv1.DeleteRequest) (*coordv1.DeleteResponse, error) {
	if err := kv.ValidateKey(req.Key); err != nil {
		return nil, invalid("key: %v", err)
	}
	cmd := &cmdpb.KVDelete{Key: req.Key}
	if req.ExpectedRevision != nil {
		cmd.HasExpected, cmd.ExpectedRevision = true, *req.ExpectedRevision
	}
	res, err := k.s.apply(ctx, sm.MachineKV, kv.OpDelete, cmd)
	if err != nil {
		return nil, err
	}
	var out cmdpb.KVDeleteResult
	if err := proto.Unmarshal(res.Result.Body, &out); err != nil {
		return nil, err
	}
	return &coordv1.DeleteResponse{Deleted: out.Deleted, Succeeded: out.Succeeded, Revision: res.Index}, nil
}

func keyValue(key string, r *cmdpb.KVRecord) *coordv1.KeyValue {
	kv := &coordv1.KeyValue{Key: key, Value: r.Value, CreateRevision: r.CreateRevision, ModRevision: r.ModRevision, Version: r.Version}
	if r.ExpiresAt != 0 {
		kv.ExpireTime = timestamppb.New(time.Unix(0, r.ExpiresAt))
	}
	return kv
}
