package main

import (
	"encoding/binary"
	"testing"
)

// untyped is a message without a type byte: the startup message or a
// request before it.
func untyped(code uint32, rest string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(rest)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, rest...)
}

func typed(t byte, body string) []byte {
	b := []byte{t}
	b = binary.BigEndian.AppendUint32(b, uint32(4+len(body)))
	return append(b, body...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestPGFrames(t *testing.T) {
	startup := untyped(196608, "user\x00c66bot\x00database\x00c66bot_test\x00\x00")
	extended := cat(typed('P', "\x00select 1\x00\x00\x00"), typed('B', "\x00\x00\x00\x00\x00\x00\x00\x00"),
		typed('D', "P\x00"), typed('E', "\x00\x00\x00\x00\x00"), typed('S', ""))
	for _, c := range []struct {
		name                string
		stream              []byte
		syncs, queries, msg int64
		wantErr             bool
	}{
		{name: "startup only", stream: startup, msg: 1},
		// An 'S' or 'Q' inside the startup message is not a message.
		{name: "startup with S and Q inside", stream: untyped(196608, "user\x00SQ\x00\x00"), msg: 1},
		{name: "simple query", stream: cat(startup, typed('Q', "begin\x00")), queries: 1, msg: 2},
		{name: "extended query is one round trip", stream: cat(startup, extended), syncs: 1, msg: 6},
		{name: "a batch: many executes, one sync", stream: cat(startup, typed('B', "xx"), typed('E', "yy"), typed('B', "xx"), typed('E', "yy"), typed('S', "")), syncs: 1, msg: 6},
		{name: "transaction", stream: cat(startup, typed('Q', "begin\x00"), extended, typed('Q', "commit\x00"), typed('X', "")), syncs: 1, queries: 2, msg: 9},
		{name: "SSL request then startup", stream: cat(untyped(pgSSLRequest, ""), startup, typed('S', "")), syncs: 1, msg: 3},
		{name: "GSS request then startup", stream: cat(untyped(pgGSSENCRequest, ""), startup, typed('Q', "x\x00")), queries: 1, msg: 3},
		// A payload holding bytes that look like a Sync header is skipped.
		{name: "S bytes in a payload", stream: cat(startup, typed('Q', "S\x00\x00\x00\x04S\x00\x00\x00\x04\x00")), queries: 1, msg: 2},
		{name: "bad length", stream: cat(startup, []byte{'Q', 0, 0, 0, 2}), msg: 1, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Whole, byte by byte, and in chunks of 3: the counts agree.
			for _, chunk := range []int{len(c.stream), 1, 3} {
				var f pgFrames
				var err error
				for i := 0; i < len(c.stream) && err == nil; i += chunk {
					err = f.feed(c.stream[i:min(i+chunk, len(c.stream))])
				}
				if (err != nil) != c.wantErr {
					t.Fatalf("chunk %d: err %v, want error %v", chunk, err, c.wantErr)
				}
				if f.syncs != c.syncs || f.queries != c.queries || f.messages != c.msg {
					t.Errorf("chunk %d: %d syncs, %d queries, %d messages; want %d, %d, %d",
						chunk, f.syncs, f.queries, f.messages, c.syncs, c.queries, c.msg)
				}
			}
		})
	}
}
