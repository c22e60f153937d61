package apiv1

import (
	"encoding/json"
	"fmt"
)

// Convert carries a domain value into its wire twin (or back) through its JSON encoding, for the server
// (shared/api/apiserver) and the agent: the twins are equal field for field and tag for tag
// (apiserver's TestWireTypesMatchTheDomain), so nothing is lost, and a field added on one side only
// fails that test instead of vanishing from the API. It panics on a value JSON cannot carry, which
// the twins never are.
func Convert[To any](from any) To {
	var to To
	data, err := json.Marshal(from)
	if err != nil {
		panic(fmt.Sprintf("apiv1: encoding %T: %v", from, err))
	}
	if err := json.Unmarshal(data, &to); err != nil {
		panic(fmt.Sprintf("apiv1: decoding %T as %T: %v", from, to, err))
	}
	return to
}
