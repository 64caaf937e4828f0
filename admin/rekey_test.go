package admin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/c66bot/c66bot/storage"
)

// unauditedKeys is a KeyStore that records whether it was rekeyed.
type unauditedKeys struct {
	KeyStore
	rekeyed bool
}

// fullAudit is an audit log that cannot be written.
type fullAudit struct{}

func (fullAudit) Append(context.Context, storage.AuditEntry) (storage.AuditEntry, error) {
	return storage.AuditEntry{}, fmt.Errorf("append audit: %w: no space left on device", storage.ErrNotAudited)
}

func (u *unauditedKeys) Rekey(context.Context) (storage.RekeyReport, error) {
	u.rekeyed = true
	return storage.RekeyReport{}, nil
}

// A rekey rewrites every sealed token, so it is in the audit log before it
// starts, or it does not start.
func TestRekeyIsRefusedWhenTheAuditCannotBeWritten(t *testing.T) {
	t.Parallel()
	ks := &unauditedKeys{}
	if _, err := Rekey(t.Context(), ks, fullAudit{}); !errors.Is(err, storage.ErrNotAudited) {
		t.Errorf("Rekey: %v, want ErrNotAudited", err)
	}
	if ks.rekeyed {
		t.Error("the tokens were resealed without an audit entry")
	}
}
