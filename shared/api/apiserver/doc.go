// Package apiserver is the server's side of the REST API's wire (shared/api/apiv1): the domain's values
// as views, the domain's errors as problem documents, the listings' query parameters, the identity
// door's principal, and the peer site (the other region's API) as the domain's PeerSite port. apiv1
// depends on the standard library only, so the mappings between the domain and the wire live here
// (and, for the agent's few, in the agent).
package apiserver
