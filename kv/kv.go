package kv

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Operations.
const (
	// OpPut writes a key (body: cmdpb.KVPut, result: cmdpb.KVPutResult).
	OpPut uint32 = 1
	// OpDelete removes a key (body: cmdpb.KVDelete, result: cmdpb.KVDeleteResult).
	OpDelete uint32 = 2
)

// Limits, enforced at the API edge and again when applied.
const (
	// MaxKeyLen is the longest key in bytes.
	MaxKeyLen = 512
	// MaxValueLen is the largest value in bytes.
	MaxValueLen = 64 << 10
	// MinTTL is the shortest TTL.
	MinTTL = time.Second
	// MaxTTL is the longest TTL.
	MaxTTL = 30 * 24 * time.Hour
)

const (
	bucketKeys   = "keys"   // key -> KVRecord
	bucketExpiry = "expiry" // expires_at BE, key -> empty
)

// Machine is the kv primitive.
type Machine struct{}

// ID implements sm.Machine.
func (Machine) ID() uint32 { return sm.MachineKV }

// Name implements sm.Machine.
func (Machine) Name() string { return "kv" }

// ValidateKey reports what is wrong with a key, or nil.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("key is empty")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("key is %d bytes; the limit is %d", len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("key contains byte 0x%02x at offset %d; keys are printable ASCII without spaces", c, i)
		}
	}
	return nil
}

// ValidatePut reports what is wrong with a put, or nil.
func ValidatePut(p *cmdpb.KVPut) error {
	if err := ValidateKey(p.Key); err != nil {
		return err
	}
	if len(p.Value) > MaxValueLen {
		return fmt.Errorf("value is %d bytes; the limit is %d", len(p.Value), MaxValueLen)
	}
	if p.Ttl != 0 && (p.Ttl < int64(MinTTL) || p.Ttl > int64(MaxTTL)) {
		return fmt.Errorf("ttl %v is outside [%v, %v]", time.Duration(p.Ttl), MinTTL, MaxTTL)
	}
	return nil
}

// Apply implements sm.Machine.
func (Machine) Apply(env sm.Env, tx sm.Tx, op uint32, body []byte) ([]byte, error) {
	switch op {
	case OpPut:
		var p cmdpb.KVPut
		if err := proto.Unmarshal(body, &p); err != nil {
			return nil, fmt.Errorf("decode KVPut: %w", err)
		}
		res, err := put(env, tx, &p)
		if err != nil {
			return nil, err
		}
		return marshal(res)
	case OpDelete:
		var d cmdpb.KVDelete
		if err := proto.Unmarshal(body, &d); err != nil {
			return nil, fmt.Errorf("decode KVDelete: %w", err)
		}
		res, err := del(env, tx, &d)
		if err != nil {
			return nil, err
		}
		return marshal(res)
	default:
		return nil, fmt.Errorf("unknown kv op %d", op)
	}
}

func put(env sm.Env, tx sm.Tx, p *cmdpb.KVPut) (*cmdpb.KVPutResult, error) {
	if err := ValidatePut(p); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	old, err := loadAny(tx, p.Key)
	if err != nil {
		return nil, err
	}
	cur := live(env, old)
	if p.HasExpected && revision(cur) != p.ExpectedRevision {
		return &cmdpb.KVPutResult{Succeeded: false, Found: cur != nil, Record: cur}, nil
	}
	rec := &cmdpb.KVRecord{Value: p.Value, CreateRevision: env.Index, ModRevision: env.Index, Version: 1}
	if cur != nil {
		rec.CreateRevision, rec.Version = cur.CreateRevision, cur.Version+1
	}
	if p.Ttl > 0 {
		rec.ExpiresAt = env.Now + p.Ttl
	}
	if err := store(tx, p.Key, rec, old); err != nil {
		return nil, err
	}
	return &cmdpb.KVPutResult{Succeeded: true, Found: true, Record: rec}, nil
}

func del(env sm.Env, tx sm.Tx, d *cmdpb.KVDelete) (*cmdpb.KVDeleteResult, error) {
	if err := ValidateKey(d.Key); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	cur, err := Load(env, tx, d.Key)
	if err != nil {
		return nil, err
	}
	if d.HasExpected && revision(cur) != d.ExpectedRevision {
		return &cmdpb.KVDeleteResult{Succeeded: false}, nil
	}
	if cur == nil {
		return &cmdpb.KVDeleteResult{Succeeded: true}, nil
	}
	if err := remove(tx, d.Key); err != nil {
		return nil, err
	}
	return &cmdpb.KVDeleteResult{Succeeded: true, Deleted: true}, nil
}

func revision(r *cmdpb.KVRecord) uint64 {
	if r == nil {
		return 0
	}
	return r.ModRevision
}

// Load returns a key's record, or nil when it is absent or expired at env.Now.
func Load(env sm.Env, tx sm.Tx, key string) (*cmdpb.KVRecord, error) {
	rec, err := loadAny(tx, key)
	if err != nil {
		return nil, err
	}
	return live(env, rec), nil
}

// loadAny returns a key's stored record, expired or not (nil: absent).
func loadAny(tx sm.Tx, key string) (*cmdpb.KVRecord, error) {
	v := tx.Bucket(bucketKeys).Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	var rec cmdpb.KVRecord
	if err := proto.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("corrupt kv record %q: %w", key, err)
	}
	return &rec, nil
}

// live returns rec unless it has expired at env.Now.
func live(env sm.Env, rec *cmdpb.KVRecord) *cmdpb.KVRecord {
	if rec == nil || (rec.ExpiresAt != 0 && rec.ExpiresAt <= env.Now) {
		return nil
	}
	return rec
}

// store writes rec over old (the key's stored record, or nil), moving the
// expiry entry when the expiry changes.
func store(tx sm.Tx, key string, rec, old *cmdpb.KVRecord) error {
	if old != nil && old.ExpiresAt != 0 && old.ExpiresAt != rec.ExpiresAt {
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(old.ExpiresAt, key)); err != nil {
			return err
		}
	}
	v, err := marshal(rec)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketKeys).Put([]byte(key), v); err != nil {
		return err
	}
	if rec.ExpiresAt != 0 && (old == nil || old.ExpiresAt != rec.ExpiresAt) {
		return tx.Bucket(bucketExpiry).Put(expiryKey(rec.ExpiresAt, key), nil)
	}
	return nil
}

// remove deletes a key (expired or not) and its expiry entry.
func remove(tx sm.Tx, key string) error {
	keys := tx.Bucket(bucketKeys)
	v := keys.Get([]byte(key))
	if v == nil {
		return nil
	}
	var old cmdpb.KVRecord
	if err := proto.Unmarshal(v, &old); err != nil {
		return fmt.Errorf("corrupt kv record %q: %w", key, err)
	}
	if old.ExpiresAt != 0 {
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(old.ExpiresAt, key)); err != nil {
			return err
		}
	}
	return keys.Delete([]byte(key))
}

func expiryKey(at int64, key string) []byte { return sm.Join(sm.I64(at), []byte(key)) }

// Tick implements sm.Machine: it deletes keys whose expiry has passed, in
// expiry order.
func (Machine) Tick(env sm.Env, tx sm.Tx, budget int) (int, error) {
	keys := tx.Bucket(bucketKeys)
	c := tx.Bucket(bucketExpiry).Cursor()
	used := 0
	for k, _ := c.First(); k != nil && used < budget; k, _ = c.First() {
		at, _ := sm.DecodeU64(k[:8])
		if int64(at) > env.Now {
			break
		}
		key := append([]byte(nil), k[8:]...)
		if err := c.Delete(); err != nil {
			return used, err
		}
		used++
		v := keys.Get(key)
		if v == nil {
			continue
		}
		var rec cmdpb.KVRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return used, fmt.Errorf("corrupt kv record %q: %w", key, err)
		}
		if rec.ExpiresAt == int64(at) {
			if err := keys.Delete(key); err != nil {
				return used, err
			}
		}
	}
	return used, nil
}

// NextDue implements sm.Machine.
func (Machine) NextDue(tx sm.Tx) (int64, bool) {
	k, _ := tx.Bucket(bucketExpiry).Cursor().First()
	if k == nil {
		return 0, false
	}
	at, _ := sm.DecodeU64(k[:8])
	return int64(at), true
}

func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}
