package server

import (
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// MaxNodeIDLen is the longest node id accepted.
const MaxNodeIDLen = 64

func validateNodeID(field, id string) error {
	if id == "" {
		return invalid("%s: must not be empty", field)
	}
	if len(id) > MaxNodeIDLen {
		return invalid("%s: %d bytes; the limit is %d", field, len(id), MaxNodeIDLen)
	}
	if strings.ContainsAny(id, " =,\t\n") {
		return invalid("%s: %q must not contain spaces, '=' or ','", field, id)
	}
	return nil
}

func validateHostPort(field, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalid("%s: %q is not host:port", field, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return invalid("%s: %q has an invalid port", field, addr)
	}
	return nil
}

// duration converts an optional protobuf duration, checking it is valid and
// within [lo, hi]. An unset duration returns 0.
func duration(field string, d *durationpb.Duration, lo, hi time.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid("%s: %v", field, err)
	}
	v := d.AsDuration()
	if v < lo || v > hi {
		return 0, invalid("%s: %v is outside [%v, %v]", field, v, lo, hi)
	}
	return v, nil
}
