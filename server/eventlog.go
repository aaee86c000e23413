package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
	"coord/eventlog"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/node"
)

type eventLogService struct {
	coordv1.UnimplementedEventLogServiceServer
	s *Server
}

// applyEventLog applies an event-log command with fences and decodes its
// result into out.
func (e *eventLogService) applyEventLog(ctx context.Context, op uint32, cmd, out proto.Message, fences []*coordv1.Fence) (*node.Applied, error) {
	res, err := e.s.apply(ctx, sm.MachineEventLog, op, cmd, fences...)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(res.Result.Body, out); err != nil {
		return nil, err
	}
	return res, nil
}

// expected converts an API expectation.
func expected(kind coordv1.ExpectedVersionKind) (cmdpb.EventLogExpected, error) {
	switch kind {
	case coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_UNSPECIFIED, coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_ANY:
		return cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_ANY, nil
	case coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_NO_STREAM:
		return cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_NO_STREAM, nil
	case coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_EXISTS:
		return cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_EXISTS, nil
	case coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_EXACT:
		return cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_VERSION, nil
	}
	return 0, invalid("expected_kind: unknown value %d", kind)
}

// appendCommand validates an append request and builds its command.
func appendCommand(req *coordv1.AppendRequest) (*cmdpb.EventLogAppend, error) {
	kind, err := expected(req.ExpectedKind)
	if err != nil {
		return nil, err
	}
	cmd := &cmdpb.EventLogAppend{Stream: req.Stream, Expected: kind, ExpectedVersion: req.ExpectedVersion}
	for _, ev := range req.Events {
		cmd.Events = append(cmd.Events, &cmdpb.EventLogNewEvent{Id: ev.Id, Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata})
	}
	if err := eventlog.ValidateAppend(cmd); err != nil {
		return nil, invalid("%v", err)
	}
	return cmd, nil
}

func (e *eventLogService) Append(ctx context.Context, req *coordv1.AppendRequest) (*coordv1.AppendResponse, error) {
	cmd, err := appendCommand(req)
	if err != nil {
		return nil, err
	}
	var out cmdpb.EventLogAppendResult
	res, err := e.applyEventLog(ctx, eventlog.OpAppend, cmd, &out, req.Fences)
	if err != nil {
		return nil, err
	}
	resp := &coordv1.AppendResponse{
		Result:         coordv1.AppendResult(out.Outcome),
		StreamExists:   out.StreamExists,
		CurrentVersion: out.CurrentVersion,
		Revision:       res.Index,
		ServerTime:     timestamppb.New(res.Now),
		Versions:       out.Versions,
		Positions:      out.Positions,
	}
	for i := range uint64(out.Count) {
		resp.Versions = append(resp.Versions, out.FirstVersion+i)
		resp.Positions = append(resp.Positions, out.FirstPosition+i)
	}
	return resp, nil
}

func recordedEvent(ev eventlog.Event) *coordv1.RecordedEvent {
	return &coordv1.RecordedEvent{
		Stream: ev.Stream, Version: ev.Version, Position: ev.Position, Id: ev.Id, Type: ev.Type,
		Data: ev.Data, Metadata: ev.Metadata, Time: timestamppb.New(time.Unix(0, ev.Time)),
	}
}

func recordedEvents(evs []eventlog.Event) []*coordv1.RecordedEvent {
	out := make([]*coordv1.RecordedEvent, len(evs))
	for i, ev := range evs {
		out[i] = recordedEvent(ev)
	}
	return out
}

// streamInfo describes a stream; st nil means it has no record.
func streamInfo(name string, st *eventlog.Stream) *coordv1.StreamInfo {
	if st == nil {
		return &coordv1.StreamInfo{Name: name, Status: coordv1.StreamStatus_STREAM_STATUS_NOT_FOUND}
	}
	r := st.Record
	info := &coordv1.StreamInfo{
		Name: r.Name, Status: coordv1.StreamStatus_STREAM_STATUS_ACTIVE,
		NextVersion: r.NextVersion, FirstVersion: st.FirstVisible, LastPosition: r.LastPosition,
		Retention:  &coordv1.Retention{MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore},
		CreateTime: ts(r.CreatedAt), UpdateTime: ts(r.UpdatedAt), DeleteTime: ts(r.DeletedAt),
	}
	if r.MaxAge != 0 {
		info.Retention.MaxAge = durationpb.New(time.Duration(r.MaxAge))
	}
	if r.Deleted {
		info.Status = coordv1.StreamStatus_STREAM_STATUS_DELETED
	}
	return info
}

func validStream(name string) error {
	if err := eventlog.ValidateName(name); err != nil {
		return invalid("stream: %v", err)
	}
	return nil
}

func (e *eventLogService) ReadStream(ctx context.Context, req *coordv1.ReadStreamRequest) (*coordv1.ReadStreamResponse, error) {
	if err := validStream(req.Stream); err != nil {
		return nil, err
	}
	limit, err := eventlog.ClampLimit(req.Limit)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if req.Direction < coordv1.ReadDirection_READ_DIRECTION_UNSPECIFIED || req.Direction > coordv1.ReadDirection_READ_DIRECTION_BACKWARDS {
		return nil, invalid("direction: unknown value %d", req.Direction)
	}
	backwards := req.Direction == coordv1.ReadDirection_READ_DIRECTION_BACKWARDS
	resp := &coordv1.ReadStreamResponse{}
	err = e.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineEventLog, func(env sm.Env, tx sm.Tx) error {
		page, err := eventlog.ReadStream(env, tx, req.Stream, req.FromVersion, backwards, limit)
		if err != nil {
			return err
		}
		info := streamInfo(req.Stream, page.Stream)
		resp.Status = info.Status
		if page.Stream != nil {
			resp.Stream = info
		}
		resp.Events, resp.NextVersion, resp.EndOfStream = recordedEvents(page.Events), page.Next, page.End
		resp.AppliedIndex = env.Index
		return nil
	})
	return resp, err
}

// filterOf validates an API filter.
func filterOf(f *coordv1.EventFilter) (eventlog.Filter, error) {
	out := eventlog.Filter{StreamPrefix: f.GetStreamPrefix(), EventType: f.GetEventType()}
	if err := eventlog.ValidatePrefix(out.StreamPrefix); err != nil {
		return out, invalid("filter.stream_prefix: %v", err)
	}
	if out.EventType != "" {
		if err := eventlog.ValidateEventType(out.EventType); err != nil {
			return out, invalid("filter.event_type: %v", err)
		}
	}
	return out, nil
}

func (e *eventLogService) ReadAll(ctx context.Context, req *coordv1.ReadAllRequest) (*coordv1.ReadAllResponse, error) {
	limit, err := eventlog.ClampLimit(req.Limit)
	if err != nil {
		return nil, invalid("%v", err)
	}
	f, err := filterOf(req.Filter)
	if err != nil {
		return nil, err
	}
	resp := &coordv1.ReadAllResponse{}
	err = e.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineEventLog, func(env sm.Env, tx sm.Tx) error {
		page, err := eventlog.ReadAll(env, tx, req.FromPosition, f, limit)
		if err != nil {
			return err
		}
		resp.Events, resp.NextPosition, resp.EndOfLog = recordedEvents(page.Events), page.Next, page.End
		resp.AppliedIndex = env.Index
		return nil
	})
	return resp, err
}

func (e *eventLogService) GetStream(ctx context.Context, req *coordv1.GetStreamRequest) (*coordv1.GetStreamResponse, error) {
	if err := validStream(req.Stream); err != nil {
		return nil, err
	}
	resp := &coordv1.GetStreamResponse{}
	err := e.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineEventLog, func(env sm.Env, tx sm.Tx) error {
		st, err := eventlog.GetStream(env, tx, req.Stream)
		resp.Stream, resp.HeadPosition = streamInfo(req.Stream, st), eventlog.Head(tx)
		return err
	})
	return resp, err
}

func (e *eventLogService) ListStreams(ctx context.Context, req *coordv1.ListStreamsRequest) (*coordv1.ListStreamsResponse, error) {
	size := int(req.PageSize)
	if size == 0 {
		size = eventlog.DefaultReadLimit
	}
	if size > eventlog.MaxReadLimit {
		return nil, invalid("page_size: %d is above the limit of %d", size, eventlog.MaxReadLimit)
	}
	if err := eventlog.ValidatePrefix(req.Prefix); err != nil {
		return nil, invalid("prefix: %v", err)
	}
	resp := &coordv1.ListStreamsResponse{}
	err := e.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineEventLog, func(env sm.Env, tx sm.Tx) error {
		streams, more, err := eventlog.ListStreams(env, tx, req.Prefix, req.PageToken, size)
		if err != nil {
			return err
		}
		for _, st := range streams {
			resp.Streams = append(resp.Streams, streamInfo(st.Record.Name, st))
		}
		if more && len(streams) > 0 {
			resp.NextPageToken = streams[len(streams)-1].Record.Name
		}
		return nil
	})
	return resp, err
}

func (e *eventLogService) DeleteStream(ctx context.Context, req *coordv1.DeleteStreamRequest) (*coordv1.DeleteStreamResponse, error) {
	if err := validStream(req.Stream); err != nil {
		return nil, err
	}
	kind, err := expected(req.ExpectedKind)
	if err != nil {
		return nil, err
	}
	cmd := &cmdpb.EventLogDeleteStream{Stream: req.Stream, Expected: kind, ExpectedVersion: req.ExpectedVersion}
	var out cmdpb.EventLogDeleteStreamResult
	res, err := e.applyEventLog(ctx, eventlog.OpDeleteStream, cmd, &out, req.Fences)
	if err != nil {
		return nil, err
	}
	return &coordv1.DeleteStreamResponse{
		Result: coordv1.DeleteStreamResult(out.Outcome), StreamExists: out.StreamExists,
		CurrentVersion: out.CurrentVersion, Revision: res.Index,
	}, nil
}

func (e *eventLogService) SetRetention(ctx context.Context, req *coordv1.SetRetentionRequest) (*coordv1.SetRetentionResponse, error) {
	if err := validStream(req.Stream); err != nil {
		return nil, err
	}
	r := req.GetRetention()
	age, err := duration("retention.max_age", r.GetMaxAge(), eventlog.MinMaxAge, eventlog.MaxMaxAge)
	if err != nil {
		return nil, err
	}
	cmd := &cmdpb.EventLogSetRetention{Stream: req.Stream, MaxCount: r.GetMaxCount(), MaxAge: int64(age), TruncateBefore: r.GetTruncateBefore()}
	var out cmdpb.EventLogSetRetentionResult
	res, err := e.applyEventLog(ctx, eventlog.OpSetRetention, cmd, &out, nil)
	if err != nil {
		return nil, err
	}
	resp := &coordv1.SetRetentionResponse{Revision: res.Index}
	// The local state has applied the call; read the stream as it is now.
	err = e.s.node.Read(ctx, false, sm.MachineEventLog, func(env sm.Env, tx sm.Tx) error {
		st, err := eventlog.GetStream(env, tx, req.Stream)
		resp.Stream = streamInfo(req.Stream, st)
		return err
	})
	return resp, err
}

func cursorOf(c *cmdpb.EventLogCursor) *coordv1.Cursor {
	return &coordv1.Cursor{Name: c.Name, Position: c.Position, UpdateTime: ts(c.UpdatedAt)}
}

func (e *eventLogService) CommitCursor(ctx context.Context, req *coordv1.CommitCursorRequest) (*coordv1.CommitCursorResponse, error) {
	if err := eventlog.ValidateName(req.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	var out cmdpb.EventLogCommitCursorResult
	res, err := e.applyEventLog(ctx, eventlog.OpCommitCursor, &cmdpb.EventLogCommitCursor{Name: req.Name, Position: req.Position}, &out, req.Fences)
	if err != nil {
		return nil, err
	}
	return &coordv1.CommitCursorResponse{Cursor: cursorOf(out.Cursor), Revision: res.Index}, nil
}

func (e *eventLogService) GetCursor(ctx context.Context, req *coordv1.GetCursorRequest) (*coordv1.GetCursorResponse, error) {
	if err := eventlog.ValidateName(req.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	resp := &coordv1.GetCursorResponse{}
	err := e.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineEventLog, func(_ sm.Env, tx sm.Tx) error {
		c, err := eventlog.Cursor(tx, req.Name)
		if err == nil && c != nil {
			resp.Found, resp.Cursor = true, cursorOf(c)
		}
		return err
	})
	return resp, err
}
