package replication_test

import (
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

func TestPageBlobRef(t *testing.T) {
	for src, want := range map[string]string{
		"pageblob:https://acct.blob.core.windows.net/disks/vm1/os.vhd": "disks/vm1/os.vhd",
		"pageblob:http://127.0.0.1:10000/devstoreaccount1/disks/os":    "disks/os",
	} {
		ref, err := replication.PageBlobRef(src)
		if err != nil || ref.String() != want {
			t.Errorf("PageBlobRef(%s) = %v, %v; want %s", src, ref, err, want)
		}
	}
	if _, err := replication.PageBlobRef("pageblob:https://acct.blob.core.windows.net/onlycontainer"); err == nil {
		t.Error("a URL without a blob name was accepted")
	}
}
