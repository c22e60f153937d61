package azconn

import "testing"

func TestAnchorConnection(t *testing.T) {
	for in, want := range map[string]string{
		"UseEmbeddedBroker=true;Path=.local/broker.db":                    "UseEmbeddedBroker=true;Path=/repo/.local/broker.db",
		"UseEmbeddedBroker=true;Path=/abs/b.db":                           "UseEmbeddedBroker=true;Path=/abs/b.db",
		"UseLocalCompute=true;Dir=.local/compute;Images=/vm;Types=../t":   "UseLocalCompute=true;Dir=/repo/.local/compute;Images=/vm;Types=/t",
		"DefaultEndpointsProtocol=http;AccountName=x;BlobEndpoint=y/Path": "DefaultEndpointsProtocol=http;AccountName=x;BlobEndpoint=y/Path",
	} {
		if got := AnchorConnection(in, "/repo"); got != want {
			t.Errorf("AnchorConnection(%q) = %q, want %q", in, got, want)
		}
	}
}
